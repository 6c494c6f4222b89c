export type { paths } from './api-types.js';
export {
  type ClientOptions,
  EventsApi,
  KvApi,
  QueuesApi,
  SessionsApi,
  StorageClient,
  TokensApi,
} from './client.js';
export { FrameError, StorageError } from './errors.js';
export { type ExecutorOptions, runExecutor } from './executor.js';
export { Transport, type TransportOptions } from './http.js';
export { ConnectionClosedError, type Delivery, type PushReceiveOptions, PushReceiver } from './receive.js';
export { defaultRetryPolicy, RETRYABLE_STATUSES, type RetryPolicy } from './retry.js';
export { type SubscribeOptions, Subscription } from './subscribe.js';
export type * from './types.js';
export { defaultWebSocket, type WebSocketFactory, type WebSocketLike } from './websocket.js';
