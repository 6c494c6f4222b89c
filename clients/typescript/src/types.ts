/** Request and response shapes, named, over the types generated from openapi.yaml (api-types.ts). */
import type { components, operations } from './api-types.js';

type Json<T> = T extends { content: { 'application/json': infer B } } ? B : never;
/** The JSON body operation `Op` takes. */
export type RequestBody<Op extends keyof operations> = Json<NonNullable<operations[Op]['requestBody']>>;
/** The JSON body operation `Op` answers with status `S`. */
export type ResponseBody<Op extends keyof operations, S extends keyof operations[Op]['responses']> = Json<
  operations[Op]['responses'][S]
>;

export type ErrorCode = components['schemas']['Error']['error']['code'];
export type Session = components['schemas']['Session'];
export type Scope = components['schemas']['Scope'];
export type TokenInfo = components['schemas']['TokenInfo'];

export type KvSetOptions = Omit<RequestBody<'kv.set'>, 'value'>;
export type KvEntry = ResponseBody<'kv.get', 200>;
export type KvSetResult = ResponseBody<'kv.set', 200>;
export type CreateSession = RequestBody<'sessions.create'>;
export type SendOptions = Omit<RequestBody<'queues.send'>, 'payload'>;
export type ReceiveOptions = RequestBody<'queues.receive'>;
export type QueueMessage = ResponseBody<'queues.receive', 200>['messages'][number];
export type QueueStats = ResponseBody<'queues.stats', 200>;
export type ChannelEvent = ResponseBody<'events.history', 200>['messages'][number];
export type Published = ResponseBody<'events.publish', 202>;
export type IssueToken = RequestBody<'tokens.issue'>;
export type IssuedToken = ResponseBody<'tokens.issue', 201>;
