/**
 * The WebSocket routes (docs/api.md, WebSocket). `$connect` runs after the authorizer accepted the
 * token and registers the connection with the token's id and expiry (at most
 * `websocket.maxConnectionsPerToken` per token, counted atomically by the registry), answering
 * the subprotocol when the token came in `Sec-WebSocket-Protocol` (functions/runtime/protocol.ts);
 * `$default` takes the client's frames (subscribe, unsubscribe, publish, ping) and answers through
 * `postToConnection`; `$disconnect` forgets the connection and its subscriptions.
 *
 * Every frame looks the connection's token up again by id (functions/runtime/ws-access.ts), as an
 * HTTP request does: a revoked or expired token gets an `unauthorized` error frame and its
 * connection is closed. Subscribe and publish are checked against that token's scopes and
 * resources, so a connection never reaches a channel its token could not. A bad frame gets an
 * error frame and the connection stays open: these handlers never throw.
 * See docs/websocket-security.md.
 */
import middy, { type MiddlewareObj } from '@middy/core';
import { allows, authorize, type Principal } from '../lib/auth.js';
import { CONNECTION_DEFAULT_TTL_SECONDS, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from '../lib/limits.js';
import { type Json, SCOPES, type Scope, type Storage } from '../lib/storage/types.js';
import { checkName, describe, isPlainObject } from '../lib/storage/validate.js';
import { websocketEndpoint } from './runtime/aws.js';
import { errorResponse } from './runtime/errors.js';
import type { ApiErrorCode } from './runtime/http.js';
import { logger } from './runtime/logger.js';
import { requestLogging, runtime } from './runtime/middleware.js';
import { acceptedProtocol } from './runtime/protocol.js';
import { endConsumers } from './runtime/push.js';
import { postFrame, relayEvent, type ServerFrame } from './runtime/relay.js';
import { getStorage } from './runtime/storage.js';
import { canUseWebSocket, currentPrincipal, NO_WEBSOCKET_SCOPE } from './runtime/ws-access.js';
import { closeConnection } from './runtime/ws-close.js';
import {
  handleQueueFrame,
  isQueueAction,
  parseQueueFrame,
  QUEUE_FIELDS,
  type QueueEcho,
  type QueueFrame,
  queueEcho,
} from './runtime/ws-queues.js';

/** What the routes read of API Gateway's WebSocket event. */
export interface WebSocketEvent {
  requestContext: {
    connectionId: string;
    routeKey?: string;
    eventType?: string;
    requestId?: string;
    domainName?: string;
    stage?: string;
    /** The authorizer's `context` plus `principalId` (API Gateway adds `integrationLatency`). */
    authorizer?: Record<string, unknown> | null;
  };
  body?: string | null;
  isBase64Encoded?: boolean;
  /** `$connect`: the handshake's headers (`Sec-WebSocket-Protocol`). */
  headers?: Record<string, string | undefined> | null;
}

export interface WebSocketResult {
  statusCode: number;
  headers?: Record<string, string>;
}

const OK: WebSocketResult = { statusCode: 200 };

type Frame =
  | { action: 'subscribe'; channel: string }
  | { action: 'unsubscribe'; channel: string }
  | { action: 'publish'; channel: string; message: Json }
  | { action: 'ping' }
  | QueueFrame;

const FIELDS: Record<Frame['action'], readonly string[]> = {
  subscribe: ['action', 'channel'],
  unsubscribe: ['action', 'channel'],
  publish: ['action', 'channel', 'message'],
  ping: ['action'],
  ...QUEUE_FIELDS,
};

/** A frame refused before it reached the storage. */
class FrameError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------
// $connect

const connectRoute = async (event: WebSocketEvent): Promise<WebSocketResult> => {
  const { connectionId } = event.requestContext;
  const grant = grantFromAuthorizer(event.requestContext.authorizer);
  if (!grant) {
    // Only reachable when the route is deployed without the authorizer: refuse, never guess.
    logger.error('$connect without a usable authorizer context: connection refused', { connectionId });
    return { statusCode: 401 };
  }
  const { principal, tokenExpiresAt } = grant;
  if (!canUseWebSocket(principal.scopes)) {
    // The authorizer denies these already; a route deployed without it must not let them in.
    logger.error('$connect with a token that cannot use the socket: connection refused', {
      connectionId,
      reason: NO_WEBSOCKET_SCOPE,
    });
    return { statusCode: 403 };
  }
  try {
    await getStorage().connections.register({
      connectionId,
      identity: principal.identity,
      scopes: principal.scopes,
      resources: principal.resources,
      tokenId: principal.id,
      tokenExpiresAt,
      ttl: CONNECTION_DEFAULT_TTL_SECONDS,
    });
    logger.info('connection registered', {
      connectionId,
      identity: principal.identity,
      tokenId: principal.id,
    });
    // A client that offered subprotocols (its token among them) drops a handshake naming none.
    const protocol = acceptedProtocol(event.headers);
    return protocol === undefined ? OK : { ...OK, headers: { 'Sec-WebSocket-Protocol': protocol } };
  } catch (error) {
    // errorResponse logs it; its status refuses the connection: 409 at the per-token limit, a
    // 5xx when the backend is down.
    return { statusCode: errorResponse(error, logger).statusCode };
  }
};

// ---------------------------------------------------------------------------------------
// $disconnect

const disconnectRoute = async (event: WebSocketEvent): Promise<WebSocketResult> => {
  const { connectionId } = event.requestContext;
  try {
    const storage = getStorage();
    const removed = await storage.connections.remove(connectionId);
    logger.info('connection closed', { connectionId, registered: removed });
    // What its queue consumers held goes to the other consumers now, not when the leases end.
    await endConsumers(storage, connectionId, websocketEndpoint(event.requestContext));
  } catch (error) {
    // The registration expires on its own (and the next publish's 410 removes it sooner).
    logger.error('connection could not be forgotten', { connectionId, error });
  }
  return OK;
};

// ---------------------------------------------------------------------------------------
// $default: the client's frames

const messageRoute = async (event: WebSocketEvent): Promise<WebSocketResult> => {
  const { connectionId } = event.requestContext;
  const endpoint = websocketEndpoint(event.requestContext);
  const reply = async (frame: ServerFrame) => {
    if (!endpoint) {
      logger.error('no WebSocket endpoint to answer on (set WEBSOCKET_ENDPOINT)', { connectionId });
      return;
    }
    const result = await postFrame(endpoint, connectionId, frame);
    if (result !== 'delivered')
      logger.warn('reply not delivered', { connectionId, result, type: frame.type });
  };

  let parsed: Record<string, unknown> | undefined;
  let frame: Frame;
  try {
    parsed = frameObject(event);
    frame = parseFrame(parsed);
  } catch (error) {
    await reply(errorFrame(error, parsed === undefined ? {} : queueEcho(parsed)));
    return OK;
  }

  if (frame.action === 'ping') {
    // Keeps the connection from API Gateway's 10-minute idle timeout; touches no storage.
    await reply({ type: 'pong' });
    return OK;
  }

  try {
    const storage = getStorage();
    const principal = await verified(storage, connectionId);
    if (!principal) {
      // The token no longer verifies: an `unauthorized` error frame, and the connection is closed.
      await closeConnection(storage, endpoint, connectionId, 'token no longer valid at a frame');
      return OK;
    }
    switch (frame.action) {
      case 'subscribe': {
        permitted(principal, connectionId, 'events:subscribe', frame.channel);
        if (!(await storage.connections.subscribe(connectionId, frame.channel))) throw notRegistered();
        logger.info('subscribed', { connectionId, channel: frame.channel });
        await reply({ type: 'subscribed', channel: frame.channel });
        break;
      }
      case 'unsubscribe': {
        const wasSubscribed = await storage.connections.unsubscribe(connectionId, frame.channel);
        logger.info('unsubscribed', { connectionId, channel: frame.channel, wasSubscribed });
        await reply({ type: 'unsubscribed', channel: frame.channel });
        break;
      }
      case 'publish': {
        permitted(principal, connectionId, 'events:publish', frame.channel);
        const { id, publishedAt } = await storage.events.publish(frame.channel, frame.message);
        logger.info('published', { connectionId, channel: frame.channel, id });
        // Exactly as an HTTP publish: the sender gets the frame too when it is subscribed.
        await relayEvent(
          storage,
          { id, channel: frame.channel, message: frame.message, publishedAt },
          { ...(endpoint === undefined ? {} : { endpoint }), sender: connectionId },
        );
        break;
      }
      default:
        await handleQueueFrame(storage, principal, connectionId, frame, reply, endpoint);
    }
  } catch (error) {
    await reply(errorFrame(error, queueEcho(parsed)));
  }
  return OK;
};

/**
 * The principal of the connection's token as it is now, or `undefined` when the token no longer
 * verifies. Throws `not_found` when the connection is not registered (it outlived API Gateway's
 * 2 h, or was closed). Two lookups, never cached: the registration, then the token by its id.
 */
async function verified(storage: Storage, connectionId: string): Promise<Principal | undefined> {
  const connection = await storage.connections.get(connectionId);
  if (!connection) throw notRegistered();
  const principal = await currentPrincipal(storage, connection);
  if (!principal)
    logger.info('frame refused: token no longer valid', { connectionId, tokenId: connection.tokenId });
  return principal;
}

/** Throws `forbidden` unless the token allows `scope` on `channel`. */
function permitted(principal: Principal, connectionId: string, scope: Scope, channel: string): void {
  if (allows(principal, { scope, resource: channel })) return;
  logger.info('frame refused', { connectionId, identity: principal.identity, scope, channel });
  authorize(principal, { scope, resource: channel });
}

function notRegistered(): FrameError {
  return new FrameError(
    'not_found',
    'this connection is no longer registered (connections last 2 hours at most): reconnect',
  );
}

/** The client's frame as a JSON object, checked for size and syntax only. */
function frameObject(event: WebSocketEvent): Record<string, unknown> {
  const { body } = event;
  if (typeof body !== 'string' || event.isBase64Encoded) {
    throw new FrameError('bad_request', 'binary frames are not accepted: send a JSON text frame');
  }
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_MESSAGE_BYTES) {
    throw new FrameError(
      'payload_too_large',
      `message is ${bytes} bytes; WebSocket messages are limited to ${MAX_MESSAGE_BYTES} bytes ` +
        '(API Gateway); publish larger messages with POST /channels/{channel}/messages',
    );
  }
  if (bytes > MAX_FRAME_BYTES) {
    throw new FrameError(
      'payload_too_large',
      `frame is ${bytes} bytes; WebSocket frames are limited to ${MAX_FRAME_BYTES} bytes ` +
        '(API Gateway); publish larger messages with POST /channels/{channel}/messages',
    );
  }
  if (body.trim() === '') throw new FrameError('bad_request', `empty frame: send ${EXAMPLE}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new FrameError(
      'bad_request',
      `frame is not valid JSON (${(error as Error).message}): send ${EXAMPLE}`,
    );
  }
  if (!isPlainObject(parsed)) {
    throw new FrameError(
      'bad_request',
      `frame must be a JSON object, got ${describe(parsed)}: send ${EXAMPLE}`,
    );
  }
  return parsed;
}

/** The client's frame, checked: action, fields and channel name. */
function parseFrame(parsed: Record<string, unknown>): Frame {
  const { action } = parsed;
  if (
    action !== 'subscribe' &&
    action !== 'unsubscribe' &&
    action !== 'publish' &&
    action !== 'ping' &&
    !isQueueAction(action)
  ) {
    const got = typeof action === 'string' ? JSON.stringify(action) : describe(action);
    throw new FrameError(
      'bad_request',
      'action: expected "subscribe", "unsubscribe", "publish", "ping", "receive", "ack", "nack", ' +
        `"extend" or "stop", got ${got}`,
    );
  }
  const unknown = Object.keys(parsed).filter((field) => !FIELDS[action].includes(field));
  if (unknown.length > 0) {
    throw new FrameError(
      'bad_request',
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => JSON.stringify(f)).join(', ')} ` +
        `in a ${action} frame (allowed: ${FIELDS[action].join(', ')})`,
    );
  }
  if (action === 'ping') return { action };
  if (isQueueAction(action)) return parseQueueFrame(action, parsed);
  const channel = checkName('channel', parsed.channel);
  if (action !== 'publish') return { action, channel };
  if (!('message' in parsed)) throw new FrameError('bad_request', 'message: missing (any JSON value)');
  return { action, channel, message: parsed.message as Json };
}

const EXAMPLE = '{"action":"subscribe","channel":"<name>"}';

/** The error frame for anything a frame's handling threw; the same codes and wording as HTTP. */
function errorFrame(error: unknown, echo: QueueEcho): ServerFrame {
  if (error instanceof FrameError) {
    logger.info('frame refused', { code: error.code, reason: error.message });
    return { type: 'error', code: error.code, message: error.message, ...echo };
  }
  // errorResponse logs it and maps it exactly as the HTTP routes do (5xx without driver detail).
  const { error: body } = JSON.parse(errorResponse(error, logger).body) as {
    error: { code: ApiErrorCode; message: string };
  };
  return { type: 'error', code: body.code, message: body.message, ...echo };
}

/**
 * The authorizer's context (see authorizer.ts), checked: the token's principal and expiry;
 * `undefined` when unusable.
 */
function grantFromAuthorizer(
  authorizer: Record<string, unknown> | null | undefined,
): { principal: Principal; tokenExpiresAt: string | null } | undefined {
  if (!authorizer) return undefined;
  const { identity, tokenId, tokenExpiresAt, scopes, resources } = authorizer;
  if (typeof identity !== 'string' || identity === '' || typeof scopes !== 'string') return undefined;
  if (typeof resources !== 'string' || typeof tokenId !== 'string' || tokenId === '') return undefined;
  if (typeof tokenExpiresAt !== 'string') return undefined;
  const scopeList = scopes === '' ? [] : scopes.split(',');
  if (!scopeList.every((scope): scope is Scope => (SCOPES as readonly string[]).includes(scope)))
    return undefined;
  let resourceList: unknown;
  try {
    resourceList = JSON.parse(resources);
  } catch {
    return undefined;
  }
  if (!Array.isArray(resourceList) || !resourceList.every((r) => typeof r === 'string')) return undefined;
  return {
    principal: { id: tokenId, identity, scopes: scopeList as Scope[], resources: resourceList as string[] },
    tokenExpiresAt: tokenExpiresAt === '' ? null : tokenExpiresAt,
  };
}

// The shared logging middleware reads only `requestContext.requestId`, which WebSocket events carry too.
const logging = requestLogging(logger) as unknown as MiddlewareObj<WebSocketEvent, WebSocketResult>[];

export const connect = middy(connectRoute).use(runtime('wsConnect')).use(logging);
export const disconnect = middy(disconnectRoute).use(runtime('wsDisconnect')).use(logging);
export const message = middy(messageRoute).use(runtime('wsDefault')).use(logging);
