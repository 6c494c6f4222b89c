/**
 * Every limit of the contract (docs/api.md, docs/errors-and-limits.md), once. The facade checks
 * them, the HTTP route schemas (and so `openapi.yaml`) and the WebSocket handler state them, and a
 * docs test holds docs/errors-and-limits.md to these values. Limits an operator configures
 * (`limits.maxValueBytes`, `websocket.maxConnectionsPerToken`…) live in the configuration schema.
 */

// names and values

/** A name (key, queue, channel, cluster id, ids, identity): at most this many bytes of UTF-8. */
export const MAX_NAME_BYTES = 255;
/** A stored JSON value is nested at most this many levels deep. */
export const MAX_JSON_DEPTH = 128;
/** Longest TTL, delay or lease accepted: ten years. Longer lifetimes are "no TTL". */
export const MAX_TTL_SECONDS = 315_360_000;
/** Opaque strings a caller hands back (a token, a queue receipt, a page cursor): at most this many characters. */
export const MAX_OPAQUE_STRING_CHARS = 1024;
/** An event id is a per-channel counter of at most this many decimal digits. */
export const EVENT_ID_DIGITS = 16;

// tokens

/** Resource globs a token may carry; each is a name with at most `MAX_GLOB_STARS` `*`. */
export const MAX_GLOBS_PER_TOKEN = 100;
export const MAX_GLOB_STARS = 8;

// listings

/** Items one listing call answers (a page of tokens or clusters, history, dead letters, audit), by default and at most. */
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
/** Keys of one `kv.getMany` or entries of one `kv.setMany`, at most. */
export const MAX_BATCH_ITEMS = 1000;
/** Items one maintenance call (`sweep`, `connections.withExpiredToken`) handles, at most. */
export const MAX_MAINTENANCE_BATCH = 100_000;
/** `connections.withExpiredToken`: connection ids answered when no limit is given. */
export const DEFAULT_EXPIRED_CONNECTIONS_LIMIT = 1000;

// queues

/** Messages one receive leases, by default and at most. */
export const DEFAULT_RECEIVE_MAX = 1;
export const MAX_RECEIVE_MAX = 100;
/** A lease (visibility timeout), in seconds: the default and the longest (SQS's 12 h). */
export const DEFAULT_VISIBILITY_SECONDS = 30;
export const MAX_VISIBILITY_SECONDS = 43_200;
/** A send's or nack's delay, in seconds, at most (7 days). */
export const MAX_DELAY_SECONDS = 604_800;
/** A receive's long poll, in seconds, at most: it fits API Gateway's 30 s integration timeout. */
export const MAX_WAIT_SECONDS = 20;
/** Push deliveries one WebSocket consumer holds unacknowledged (a `receive` frame's `max`), at most. */
export const MAX_CONSUMER_IN_FLIGHT = 100;

// WebSocket connections

/** Channels one connection may subscribe to. */
export const MAX_CHANNELS_PER_CONNECTION = 100;
/** API Gateway closes a WebSocket after 2 h: the registration's default lifetime. */
export const CONNECTION_DEFAULT_TTL_SECONDS = 7200;
/** A registration lives at most a day (API Gateway's own limit is 2 h). */
export const CONNECTION_MAX_TTL_SECONDS = 86_400;
/** API Gateway's WebSocket limits: one frame, and one message (frames joined). */
export const MAX_FRAME_BYTES = 32 * 1024;
export const MAX_MESSAGE_BYTES = 128 * 1024;

// HTTP

/** A request body may be this many times `limits.maxValueBytes`, plus `BODY_OVERHEAD_BYTES` (JSON escapes, other fields). */
export const BODY_VALUE_MULTIPLE = 4;
export const BODY_OVERHEAD_BYTES = 64 * 1024;
