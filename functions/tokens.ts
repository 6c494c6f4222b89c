/**
 * Token routes of docs/api.md (admin scope): issue, list, revoke. An admin whose token is limited
 * to some resources sees, issues and revokes only tokens within them. Every issue and revoke is
 * written to the audit log with the identity that did it; the token secret never is.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ForbiddenError, NotFoundError } from '../lib/errors.js';
import { covers } from '../lib/storage/lineage.js';
import type { AuditInput, Storage } from '../lib/storage/types.js';
import { checkName } from '../lib/storage/validate.js';
import { httpApi } from './runtime/api.js';
import { json, noContent } from './runtime/http.js';
import { logger } from './runtime/logger.js';
import { pageOptions, readPage } from './runtime/paging.js';
import { closeConnectionsOf } from './runtime/ws-close.js';

/** The caller's correlation id (`X-Correlation-Id`) when it is a valid name, else API Gateway's request id. */
function correlationIdOf(event: APIGatewayProxyEventV2): string | undefined {
  const header = Object.entries(event.headers ?? {}).find(
    ([name]) => name.toLowerCase() === 'x-correlation-id',
  )?.[1];
  try {
    return checkName('X-Correlation-Id', header?.trim());
  } catch {
    return event.requestContext?.requestId;
  }
}

/**
 * The audit entry of a change that has already happened: a failure to write it is logged as an
 * error and does not turn the change into an error response (the caller would retry a change
 * that was made, or lose a token secret shown nowhere else).
 */
async function audit(storage: Storage, entry: AuditInput): Promise<void> {
  try {
    await storage.audit.append(entry);
  } catch (error) {
    logger.error('audit entry not written', { entry, error });
  }
}

export const handler = httpApi('tokens', {
  // The new token is bounded by the caller's (lib/storage/lineage.ts): scopes, resources, expiry.
  'POST /tokens': async ({ storage, body, principal, event }) => {
    const issued = await storage.tokens.issue({ ...body, issuerId: principal.id });
    const { token, id, identity, scopes, resources, expiresAt } = issued;
    await audit(storage, {
      identity: principal.identity,
      action: 'tokens.issue',
      resource: id,
      correlationId: correlationIdOf(event),
      details: { identity, scopes, resources, expiresAt, issuerId: issued.issuerId },
    });
    return json(201, { id, token, identity, scopes, resources, expiresAt });
  },

  // Only tokens within the caller's resources, filtered by the backend.
  'GET /tokens': async ({ storage, principal, query }) => {
    const { tokens, cursor } = await readPage('GET /tokens', () =>
      storage.tokens.page({ ...pageOptions(query), within: principal.resources }),
    );
    // docs/api.md's fields: lineage stays inside (a caller sees tokens, not who issued them).
    const body = tokens.map(({ id, identity, scopes, resources, createdAt, expiresAt }) => ({
      id,
      identity,
      scopes,
      resources,
      createdAt,
      expiresAt,
    }));
    return json(200, cursor === undefined ? { tokens: body } : { tokens: body, cursor });
  },

  'DELETE /tokens/{id}': async ({ storage, params: { id }, principal, event }) => {
    const target = await storage.tokens.get(id!);
    if (target && !covers(principal.resources, target.resources)) {
      throw new ForbiddenError(
        `token may not revoke a token with resources beyond its own (${principal.resources.join(', ')})`,
      );
    }
    // The token and every token below it (the ones it issued, and theirs).
    const revoked = await storage.tokens.revoke(id!);
    if (revoked.length === 0) throw new NotFoundError(`token ${JSON.stringify(id)} not found`);
    await closeConnectionsOf(storage, revoked);
    await audit(storage, {
      identity: principal.identity,
      action: 'tokens.revoke',
      resource: id!,
      correlationId: correlationIdOf(event),
      details: { revoked },
    });
    return noContent();
  },
});
