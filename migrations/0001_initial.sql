-- The PostgreSQL backend's tables. The runner executes this file in one transaction with
-- search_path set to the target schema (postgresql.schema), so names here are unqualified;
-- the backend itself always names the schema.
--
-- Where this departs from the original schema (kv_store, sessions, queues, events), and why:
-- * Every table is logged. UNLOGGED tables are truncated after a crash and are not kept by
--   Neon when a compute restarts: acknowledged data would be lost.
-- * Names (keys, queue and channel names, ids) are `text COLLATE "C"`: byte-order comparison
--   is cheaper than a locale's, gives one order everywhere, and an OS locale upgrade cannot
--   silently corrupt the indexes.
-- * Values are JSON kept as text, not jsonb: they come back byte for byte as written (jsonb
--   reorders object keys, drops duplicate keys and rejects "\u0000"), and nothing is parsed on
--   the server. Nothing in the contract queries inside a value.
-- * Every `expires_at` is indexed (partial where NULL means "never"), so the scheduled sweep
--   deletes in batches without scanning; every read also filters on it, so an expired row is
--   never answered whether or not the sweep has run.
-- * Times are timestamptz (UTC instants), never timestamp without time zone.

-- ---------------------------------------------------------------------------------------
-- kv

CREATE TABLE kv_store (
  key        text COLLATE "C" PRIMARY KEY,
  value      text NOT NULL,
  expires_at timestamptz
);
CREATE INDEX kv_store_expires_at ON kv_store (expires_at) WHERE expires_at IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- sessions

CREATE TABLE sessions (
  session_id       text COLLATE "C" PRIMARY KEY,
  cluster_id       text COLLATE "C" NOT NULL,
  user_id          text,
  correlation_id   text COLLATE "C",
  service_identity text,
  data             text NOT NULL,
  -- The ttl a keep-alive without one renews by.
  ttl_ms           bigint NOT NULL CHECK (ttl_ms > 0),
  created_at       timestamptz NOT NULL,
  last_activity    timestamptz NOT NULL,
  expires_at       timestamptz NOT NULL
);
-- isClusterActive is the hot path: one probe of this index answers it.
CREATE INDEX sessions_cluster_id ON sessions (cluster_id, expires_at);
CREATE INDEX sessions_correlation_id ON sessions (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- ---------------------------------------------------------------------------------------
-- queues: one row per message, from send until ack (or for ever in the dead letters).
--
-- state 'ready'  : waiting; visible from visible_at (a delay or nack delay ends then).
-- state 'leased' : delivered; the lease ends at visible_at. A lease that ended makes the
--                  message deliverable again (or dead once attempts reach the maximum), and
--                  its receipt keeps working until that next delivery replaces it.
-- state 'dead'   : attempts spent; kept for deadLetters/redrive.

CREATE TABLE queues (
  id          uuid PRIMARY KEY,
  queue       text COLLATE "C" NOT NULL,
  -- FIFO order among visible messages: enqueue order, fixed at send.
  seq         bigint GENERATED ALWAYS AS IDENTITY,
  payload     text NOT NULL,
  state       text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'leased', 'dead')),
  attempts    integer NOT NULL DEFAULT 0,
  receipt     uuid,
  enqueued_at timestamptz NOT NULL,
  visible_at  timestamptz NOT NULL,
  died_at     timestamptz
);
-- One partial index per state, so no lookup walks rows of another state: a claim takes waiting
-- messages in FIFO order from queues_ready and ended leases from queues_leased (leases still
-- running are never scanned, however many there are); the next moment a waiting receiver must
-- look again is the first entry of queues_delayed or queues_leased; dead letters sit apart.
CREATE INDEX queues_ready ON queues (queue, seq) WHERE state = 'ready';
CREATE INDEX queues_delayed ON queues (queue, visible_at) WHERE state = 'ready';
CREATE INDEX queues_leased ON queues (queue, visible_at) WHERE state = 'leased';
CREATE INDEX queues_dead ON queues (queue, died_at, seq) WHERE state = 'dead';

-- Deduplication ids seen within the window: (queue, dedup_id) → the message first sent with it.
CREATE TABLE queue_dedup (
  queue      text COLLATE "C" NOT NULL,
  dedup_id   text COLLATE "C" NOT NULL,
  message_id uuid NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (queue, dedup_id)
);
CREATE INDEX queue_dedup_expires_at ON queue_dedup (expires_at);

-- ---------------------------------------------------------------------------------------
-- events: bounded history per channel. Ids are a per-channel sequence taken from
-- event_channels inside the publishing transaction: the row lock orders publishers of one
-- channel, so ids increase in commit order and a reader following `id > last seen` never
-- skips an event that commits late. NOTIFY carries only the channel and id, so a message of
-- any allowed size works (a NOTIFY payload is limited to 8,000 bytes).

CREATE TABLE event_channels (
  channel text COLLATE "C" PRIMARY KEY,
  last_id bigint NOT NULL
);

CREATE TABLE events (
  channel      text COLLATE "C" NOT NULL,
  id           bigint NOT NULL,
  message      text NOT NULL,
  published_at timestamptz NOT NULL,
  PRIMARY KEY (channel, id)
);

-- ---------------------------------------------------------------------------------------
-- tokens: only the SHA-256 of a token is stored.

CREATE TABLE tokens (
  id         text COLLATE "C" PRIMARY KEY,
  hash       text COLLATE "C" NOT NULL UNIQUE,
  identity   text NOT NULL,
  scopes     text[] NOT NULL,
  resources  text[] NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz
);
CREATE INDEX tokens_expires_at ON tokens (expires_at) WHERE expires_at IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- audit: append-only; retention (audit.maxEntries, audit.maxAge) is applied on read and by
-- the sweep.

CREATE TABLE audit_log (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at             timestamptz NOT NULL,
  identity       text COLLATE "C" NOT NULL,
  action         text NOT NULL,
  resource       text,
  correlation_id text,
  outcome        text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
  details        text
);
CREATE INDEX audit_log_identity ON audit_log (identity, id);
CREATE INDEX audit_log_at ON audit_log (at);
