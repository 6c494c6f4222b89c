/**
 * Tells, from the bytes a client writes on a socket, when the connection's handshake is over and
 * its first query goes out. Used by bench/lib/cold-request.mjs on every write of every client
 * socket; `state` is that socket's own (start with `{ written: 0 }`).
 *
 *   pg     the PostgreSQL wire protocol: the startup (and SSL) request starts with its length (a
 *          0 byte), a password message with `p`; a query with `Q` (simple) or `P` / `B` (extended).
 *   neon   the same protocol inside the client's masked binary WebSocket frames, after the
 *          HTTP upgrade request.
 *   redis  RESP commands: ioredis' handshake is AUTH / HELLO / CLIENT / SELECT / READONLY and
 *          its ready check INFO; any other command is a query.
 */

const PG_QUERY = new Set(['Q', 'P', 'B'].map((c) => c.charCodeAt(0)));
const REDIS_HANDSHAKE = new Set(['auth', 'hello', 'client', 'select', 'readonly', 'info']);

/** Whether `bytes`, the next write on a socket, starts a query on `wire`. */
export function isQueryWrite(wire, bytes, state) {
  state.written += 1;
  if (bytes.length === 0) return false;
  switch (wire) {
    case 'pg':
      return PG_QUERY.has(bytes[0]);
    case 'redis': {
      const name = /^\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/.exec(bytes.subarray(0, 64).toString('latin1'))?.[1];
      return name !== undefined && !REDIS_HANDSHAKE.has(name.toLowerCase());
    }
    case 'neon':
      return neonWrite(bytes, state);
    default:
      throw new Error(`unknown wire ${wire}`);
  }
}

/**
 * The first payload byte of each client frame, unmasked; frames may span writes, and a write may
 * hold several frames. `state.pending` holds bytes of a frame header not yet complete,
 * `state.skip` the payload bytes of the current frame still to pass.
 */
function neonWrite(bytes, state) {
  if (!state.upgraded) {
    // The first write is the HTTP upgrade request; frames follow in later writes.
    state.upgraded = true;
    state.pending = Buffer.alloc(0);
    state.skip = 0;
    return false;
  }
  let data = Buffer.concat([state.pending, bytes]);
  state.pending = Buffer.alloc(0);
  while (data.length > 0) {
    if (state.skip > 0) {
      const passed = Math.min(state.skip, data.length);
      state.skip -= passed;
      data = data.subarray(passed);
      continue;
    }
    const header = frameHeader(data);
    if (header === undefined || data.length <= header.size) {
      state.pending = data;
      return false;
    }
    const first = data[header.size] ^ (header.mask ? data[header.size - 4] : 0);
    const binary = (data[0] & 0x0f) === 0x2;
    if (binary && header.length > 0 && PG_QUERY.has(first)) return true;
    state.skip = header.length;
    data = data.subarray(header.size);
  }
  return false;
}

/** A WebSocket frame's header size (mask key included) and payload length, or undefined when incomplete. */
function frameHeader(data) {
  if (data.length < 2) return undefined;
  const mask = (data[1] & 0x80) !== 0;
  let length = data[1] & 0x7f;
  let size = 2;
  if (length === 126) {
    if (data.length < 4) return undefined;
    length = data.readUInt16BE(2);
    size = 4;
  } else if (length === 127) {
    if (data.length < 10) return undefined;
    length = Number(data.readBigUInt64BE(2));
    size = 10;
  }
  size += mask ? 4 : 0;
  return data.length < size ? undefined : { size, length, mask };
}
