/**
 * The WebSocket connection registry: a registration's lifetime, the per-token and per-connection
 * limits, and paged listings of subscribers and of a token's connections.
 */
import { ConflictError, ValidationError } from '../../errors.js';
import {
  CONNECTION_DEFAULT_TTL_SECONDS,
  CONNECTION_MAX_TTL_SECONDS,
  DEFAULT_EXPIRED_CONNECTIONS_LIMIT,
  MAX_CHANNELS_PER_CONNECTION,
  MAX_MAINTENANCE_BATCH,
} from '../../limits.js';
import type { ConnectionDriver } from '../driver.js';
import { checkListLimit, decodeCursor, encodeCursor, namePosition } from '../paging.js';
import type { ConnectionIdsPage, ConnectionStore } from '../types.js';
import { checkGlobs, checkInt, checkName, checkOptions, checkTtl } from '../validate.js';
import { checkIsoTime, checkScopes } from './checks.js';

const REGISTER_FIELDS = [
  'connectionId',
  'identity',
  'scopes',
  'resources',
  'tokenId',
  'tokenExpiresAt',
  'ttl',
] as const;

export function createConnectionStore(
  driver: ConnectionDriver,
  maxConnectionsPerToken: number,
): ConnectionStore {
  /** A page of ids after `options.cursor`: a channel's subscribers, or a token's connections. */
  const idsAfter = async (
    listing: string,
    options: unknown,
    read: (after: string | undefined, limit: number) => Promise<{ connectionIds: string[]; more: boolean }>,
  ): Promise<ConnectionIdsPage> => {
    const o = checkOptions('options', options, ['cursor', 'limit']);
    const after =
      o.cursor === undefined ? undefined : decodeCursor('options.cursor', o.cursor, listing, namePosition);
    return idsPage(await read(after, checkListLimit('options.limit', o.limit)));
  };
  return {
    async register(input) {
      const i = checkOptions('input', input, REGISTER_FIELDS);
      if (input === undefined) throw new ValidationError('input', 'is required');
      const connectionId = checkName('connectionId', i.connectionId);
      const identity = checkName('identity', i.identity);
      const scopes = checkScopes(i.scopes);
      if (i.resources === undefined) throw new ValidationError('resources', 'is required');
      const resources = checkGlobs('resources', i.resources);
      const tokenId = checkName('tokenId', i.tokenId);
      const tokenExpiresAtMs =
        i.tokenExpiresAt === undefined || i.tokenExpiresAt === null
          ? null
          : checkIsoTime('tokenExpiresAt', i.tokenExpiresAt);
      const ttlMs = i.ttl === undefined ? CONNECTION_DEFAULT_TTL_SECONDS * 1000 : checkRegistrationTtl(i.ttl);
      const registered = await driver.register(
        { connectionId, identity, scopes, resources, tokenId, tokenExpiresAtMs, ttlMs },
        maxConnectionsPerToken,
      );
      if (registered === 'full') {
        throw new ConflictError(
          `token ${JSON.stringify(tokenId)} already holds ${maxConnectionsPerToken} open WebSocket connections, ` +
            'the most allowed (websocket.maxConnectionsPerToken): close one first',
        );
      }
      return registered;
    },
    get: async (connectionId) => driver.get(checkName('connectionId', connectionId)),
    async subscribe(connectionId, channel) {
      checkName('connectionId', connectionId);
      checkName('channel', channel);
      const outcome = await driver.subscribe(connectionId, channel, MAX_CHANNELS_PER_CONNECTION);
      if (outcome === 'full') {
        throw new ConflictError(
          `connection ${JSON.stringify(connectionId)} is subscribed to ${MAX_CHANNELS_PER_CONNECTION} channels, the most allowed`,
        );
      }
      return outcome === 'subscribed';
    },
    async unsubscribe(connectionId, channel) {
      checkName('connectionId', connectionId);
      checkName('channel', channel);
      return driver.unsubscribe(connectionId, channel);
    },
    async subscribers(channel, options) {
      checkName('channel', channel);
      return idsAfter('subscribers()', options, (after, limit) => driver.subscribers(channel, after, limit));
    },
    remove: async (connectionId) => driver.remove(checkName('connectionId', connectionId)),
    async byToken(tokenId, options) {
      checkName('tokenId', tokenId);
      return idsAfter('byToken()', options, (after, limit) => driver.byToken(tokenId, after, limit));
    },
    async withExpiredToken(options) {
      const o = checkOptions('options', options, ['limit']);
      const limit =
        o.limit === undefined
          ? DEFAULT_EXPIRED_CONNECTIONS_LIMIT
          : checkInt('options.limit', o.limit, 1, MAX_MAINTENANCE_BATCH);
      return driver.withExpiredToken(limit);
    },
  };
}

/** A registration's own `ttl`, in seconds: a TTL of at most `CONNECTION_MAX_TTL_SECONDS`; answers ms. */
function checkRegistrationTtl(ttl: unknown): number {
  const ttlMs = checkTtl('ttl', ttl);
  if (ttlMs > CONNECTION_MAX_TTL_SECONDS * 1000) {
    throw new ValidationError('ttl', `must be at most ${CONNECTION_MAX_TTL_SECONDS} seconds, got ${ttl}`);
  }
  return ttlMs;
}

/** A page of connection ids as callers see it: a cursor (the last id) when more follow. */
function idsPage(page: { connectionIds: string[]; more: boolean }): ConnectionIdsPage {
  const last = page.connectionIds.at(-1);
  return page.more && last !== undefined
    ? { connectionIds: page.connectionIds, cursor: encodeCursor(last) }
    : { connectionIds: page.connectionIds };
}
