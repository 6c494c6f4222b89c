-- Which token each WebSocket connection was opened with, so that every frame can look the token
-- up again, revoking a token can close its connections, and the cleanup can close connections
-- whose token expired. Rows registered before this file have token_id '' (no token has that
-- id): they fail their next frame's check and are closed then, at the latest after API
-- Gateway's 2 h.

ALTER TABLE ws_connections
  ADD COLUMN token_id text COLLATE "C" NOT NULL DEFAULT '',
  ADD COLUMN token_expires_at timestamptz;
ALTER TABLE ws_connections ALTER COLUMN token_id DROP DEFAULT;

-- A token's connections in byte order of their ids: `byToken` pages it, and `register` counts
-- them under the per-token limit.
CREATE INDEX ws_connections_token_id ON ws_connections (token_id, connection_id);
-- Connections whose token expires, earliest first: the cleanup closes those past it.
CREATE INDEX ws_connections_token_expires_at ON ws_connections (token_expires_at)
  WHERE token_expires_at IS NOT NULL;
