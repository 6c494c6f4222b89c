-- Push delivery over the WebSocket: the connections waiting for a queue's messages and the
-- deliveries each one holds unacknowledged (lib/storage/postgresql/consumers.ts). Lease ends
-- and claim times are epoch ms from the clock of the function that claims (one clock per push).

CREATE TABLE queue_consumers (
  queue text COLLATE "C" NOT NULL,
  connection_id text COLLATE "C" NOT NULL,
  max_in_flight integer NOT NULL,
  visibility_ms bigint NOT NULL,
  last_claim_ms bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, connection_id)
);
-- A connection's consumers, every queue: a close ends them all.
CREATE INDEX queue_consumers_connection_id ON queue_consumers (connection_id);

-- delivery_key: the message id, or a slot id (`~…`) reserved by a claim and not yet bound.
-- receipt is '' for a slot.
CREATE TABLE queue_deliveries (
  queue text COLLATE "C" NOT NULL,
  delivery_key text COLLATE "C" NOT NULL,
  connection_id text COLLATE "C" NOT NULL,
  receipt text NOT NULL,
  lease_ends_ms bigint NOT NULL,
  PRIMARY KEY (queue, delivery_key)
);
CREATE INDEX queue_deliveries_connection_id ON queue_deliveries (connection_id);
