-- The WebSocket relay's connection registry: which connections exist (registered at
-- `$connect` with the identity, scopes and resources of their token) and which channels each
-- listens to. Same conventions as 0001_initial.sql: names are `text COLLATE "C"` (byte order:
-- `subscribers` pages by connection id in that order), times are timestamptz, every table is
-- logged, and every read filters on `expires_at`, so an expired connection and its
-- subscriptions are invisible at once whether or not the sweep has run.

CREATE TABLE ws_connections (
  connection_id text COLLATE "C" PRIMARY KEY,
  identity      text NOT NULL,
  scopes        text[] NOT NULL,
  resources     text[] NOT NULL,
  connected_at  timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL
);
-- The sweep deletes expired connections in batches from this index.
CREATE INDEX ws_connections_expires_at ON ws_connections (expires_at);

-- One row per (channel, connection). The primary key serves `subscribers` (keyset pagination
-- by connection id within a channel); deleting a connection deletes its subscriptions (the
-- cascade), so the two directions never disagree.
CREATE TABLE ws_subscriptions (
  channel       text COLLATE "C" NOT NULL,
  connection_id text COLLATE "C" NOT NULL REFERENCES ws_connections (connection_id) ON DELETE CASCADE,
  PRIMARY KEY (channel, connection_id)
);
-- A connection's channels, in order (`get`), its channel count (the 100-channel limit), and the
-- cascade's lookup.
CREATE INDEX ws_subscriptions_connection_id ON ws_subscriptions (connection_id, channel);
