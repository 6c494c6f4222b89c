/**
 * What each function may do beyond writing its logs and traces, and its default reserved
 * concurrency (parameter `concurrency.<function>`). deploy/plugin.cjs gives every function a
 * role of its own from this table; a function not listed gets `FUNCTION_DEFAULTS`.
 *
 * - `secrets`: the configuration variables whose secrets it reads (lib/config/secrets.ts): its
 *   environment carries only those references and its role may read only those.
 * - `relay`: posts to (and closes) this stage's WebSocket connections.
 * - `invokeFanout`: hands a relay to the fanout function.
 * - `failureQueue`: its failed asynchronous invocations go to the fan-out failure queue.
 *
 * Concurrency: a container serves one request at a time and holds its own connection pool, so
 * the sum of these, times the pool size, is what the database may see (docs/deploying.md).
 */
const STORAGE = ['DATABASE_URL', 'REDIS_URL', 'REDIS_PASSWORD'];
/** Functions that check tokens also need the bootstrap token's hash. */
const AUTHENTICATING = [...STORAGE, 'BOOTSTRAP_TOKEN_HASH'];

const FUNCTIONS = {
  health: { concurrency: 2, secrets: STORAGE },
  kv: { concurrency: 20, secrets: AUTHENTICATING },
  sessions: { concurrency: 20, secrets: AUTHENTICATING },
  // Long polls hold a container for up to 20 s each; a send pushes to WebSocket consumers.
  queues: { concurrency: 20, secrets: AUTHENTICATING, relay: true },
  publish: { concurrency: 10, secrets: AUTHENTICATING, relay: true, invokeFanout: true },
  // A revoke closes the WebSocket connections of every token it took.
  tokens: { concurrency: 2, secrets: AUTHENTICATING, relay: true },
  wsAuthorizer: { concurrency: 10, secrets: AUTHENTICATING },
  wsConnect: { concurrency: 10, secrets: STORAGE },
  // Gives a closed consumer's deliveries to the other WebSocket consumers.
  wsDisconnect: { concurrency: 10, secrets: STORAGE, relay: true },
  // Frames re-check tokens, relay publishes and may hand them to the fanout.
  wsDefault: { concurrency: 20, secrets: AUTHENTICATING, relay: true, invokeFanout: true },
  fanout: { concurrency: 5, secrets: STORAGE, relay: true, failureQueue: true },
  // Pushes due queue messages to WebSocket consumers.
  cleanup: { concurrency: 1, secrets: STORAGE, relay: true },
  migrate: { concurrency: 1, secrets: STORAGE },
};

/** A function this table does not know: the storage and the token check, nothing else. */
const FUNCTION_DEFAULTS = { concurrency: 5, secrets: AUTHENTICATING };

/** The table's entry for `name`. */
const accessOf = (name) => FUNCTIONS[name] ?? FUNCTION_DEFAULTS;

module.exports = { FUNCTIONS, FUNCTION_DEFAULTS, accessOf };
