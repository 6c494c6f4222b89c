/**
 * Closing WebSocket connections from the server: those whose token no longer verifies (a frame
 * met it), was revoked (`DELETE /tokens/{id}`), or has expired (the scheduled cleanup). Each one
 * is first forgotten by the registry with its subscriptions, so no relay delivers to it from
 * then on even if API Gateway cannot be reached; then it is told why in an `unauthorized` error
 * frame, and closed through the management API (`DeleteConnection`; serverless-offline
 * implements it too).
 */
import type { Storage } from '../../lib/storage/types.js';
import { websocketEndpoint } from './aws.js';
import { logger } from './logger.js';
import { endConsumers } from './push.js';
import { type CloseResult, closeSocket, eachLimited, POST_CONCURRENCY, postFrame } from './relay.js';
import { TOKEN_INVALID_MESSAGE } from './ws-access.js';

export interface ClosedCounts {
  /** Connections found and forgotten by the registry. */
  connections: number;
  /** Closed at API Gateway. */
  closed: number;
  /** Already gone there (410). */
  gone: number;
  /** Forgotten, but API Gateway could not be told to close them (or no endpoint is known). */
  failed: number;
}

const PAGE_SIZE = 1000;

/**
 * Forgets one connection and closes it. `endpoint` undefined: it is only forgotten (and logged
 * as an error: the socket stays open, receiving nothing). Throws only when the registry cannot
 * be changed.
 */
export async function closeConnection(
  storage: Storage,
  endpoint: string | undefined,
  connectionId: string,
  reason: string,
): Promise<CloseResult> {
  await storage.connections.remove(connectionId);
  await endConsumers(storage, connectionId, endpoint);
  if (!endpoint) {
    logger.error('connection forgotten but not closed: no WebSocket endpoint (set WEBSOCKET_ENDPOINT)', {
      connectionId,
      reason,
    });
    return 'failed';
  }
  await postFrame(endpoint, connectionId, {
    type: 'error',
    code: 'unauthorized',
    message: TOKEN_INVALID_MESSAGE,
  });
  const result = await closeSocket(endpoint, connectionId);
  logger.info('connection closed by the server', { connectionId, reason, result });
  return result;
}

/**
 * Closes every live connection opened with one of `tokenIds` (revoked tokens: the ids
 * `tokens.revoke` answers, descendants included). Never throws: a revoke has already happened
 * when this runs, so a registry that cannot be read is logged as an error, and those
 * connections are refused at their next frame.
 */
export async function closeConnectionsOf(
  storage: Storage,
  tokenIds: readonly string[],
  endpoint: string | undefined = websocketEndpoint(),
): Promise<ClosedCounts> {
  const counts: ClosedCounts = { connections: 0, closed: 0, gone: 0, failed: 0 };
  for (const tokenId of tokenIds) {
    try {
      const ids = await connectionsOfToken(storage, tokenId);
      await closeAll(storage, endpoint, ids, 'token revoked', counts);
    } catch (error) {
      logger.error('connections of a revoked token could not be closed', { tokenId, error });
    }
  }
  if (counts.connections > 0) logger.info('connections of revoked tokens closed', { tokenIds, ...counts });
  return counts;
}

/**
 * Closes up to `limit` live connections whose token has expired (the scheduled cleanup's part;
 * the next run goes on). Throws when the registry cannot be read.
 */
export async function closeConnectionsWithExpiredToken(
  storage: Storage,
  limit: number,
  endpoint: string | undefined = websocketEndpoint(),
): Promise<ClosedCounts> {
  const counts: ClosedCounts = { connections: 0, closed: 0, gone: 0, failed: 0 };
  const ids = await storage.connections.withExpiredToken({ limit });
  await closeAll(storage, endpoint, ids, 'token expired', counts);
  return counts;
}

/** All of a token's live connections: few (the per-token limit), paged all the same. */
async function connectionsOfToken(storage: Storage, tokenId: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage.connections.byToken(tokenId, {
      ...(cursor === undefined ? {} : { cursor }),
      limit: PAGE_SIZE,
    });
    ids.push(...page.connectionIds);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return ids;
}

async function closeAll(
  storage: Storage,
  endpoint: string | undefined,
  connectionIds: readonly string[],
  reason: string,
  counts: ClosedCounts,
): Promise<void> {
  await eachLimited(connectionIds, POST_CONCURRENCY, async (connectionId) => {
    counts.connections += 1;
    try {
      counts[await closeConnection(storage, endpoint, connectionId, reason)] += 1;
    } catch (error) {
      // Still registered, and still refused at its next frame; the next revoke or cleanup retries.
      logger.error('connection could not be forgotten', { connectionId, reason, error });
      counts.failed += 1;
    }
  });
}
