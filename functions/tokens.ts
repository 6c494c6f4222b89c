/**
 * Token routes of API.md (admin scope): issue, list, revoke. An admin whose token is limited
 * to some resources sees, issues and revokes only tokens within them. Every issue and revoke is
 * written to the audit log with the identity that did it; the token secret never is.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { Principal } from '../lib/auth.js';
import { ForbiddenError, NotFoundError } from '../lib/errors.js';
import { matchesAny } from '../lib/glob.js';
import type { AuditInput, IssueTokenInput, Storage, TokenInfo } from '../lib/storage/types.js';
import { checkName } from '../lib/storage/validate.js';
import { type ApiRequest, httpApi } from './lib/api.js';
import { json, noContent } from './lib/http.js';
import { logger } from './lib/logger.js';
import { closeConnectionsOf } from './lib/ws-close.js';

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
 * Whether `principal` may act on tokens covering `patterns`: each pattern, read as a plain
 * string, must be matched by one of the principal's globs. That is sound (a glob matching the
 * pattern's text matches every name the pattern matches, its `*` absorbing whatever the
 * pattern's `*` stands for), if not complete. An admin with `["*"]` covers every token.
 */
function covers(principal: Principal, patterns: string[]): boolean {
  return patterns.every((pattern) => matchesAny(principal.resources, pattern));
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
  'POST /tokens': async ({ storage, body, principal, event }: ApiRequest<IssueTokenInput>) => {
    const requested = body.resources ?? ['*'];
    if (!covers(principal, requested)) {
      const wider = requested.filter((pattern) => !covers(principal, [pattern]));
      throw new ForbiddenError(
        `token may not issue access to ${wider.map((p) => JSON.stringify(p)).join(', ')} beyond its own resources (${principal.resources.join(', ')})`,
      );
    }
    const { token, id, identity, scopes, resources, expiresAt } = await storage.tokens.issue(body);
    await audit(storage, {
      identity: principal.identity,
      action: 'tokens.issue',
      resource: id,
      correlationId: correlationIdOf(event),
      details: { identity, scopes, resources, expiresAt },
    });
    return json(201, { id, token, identity, scopes, resources, expiresAt });
  },

  'GET /tokens': async ({ storage, principal }) => {
    const tokens = await storage.tokens.list();
    return json(200, { tokens: tokens.filter((token) => covers(principal, token.resources)) });
  },

  'DELETE /tokens/{id}': async ({ storage, params: { id }, principal, event }) => {
    const target: TokenInfo | undefined = (await storage.tokens.list()).find((token) => token.id === id);
    if (target && !covers(principal, target.resources)) {
      throw new ForbiddenError(
        `token may not revoke a token with resources beyond its own (${principal.resources.join(', ')})`,
      );
    }
    if (!(await storage.tokens.revoke(id!))) throw new NotFoundError(`token ${JSON.stringify(id)} not found`);
    await closeConnectionsOf(storage, [id!]);
    await audit(storage, {
      identity: principal.identity,
      action: 'tokens.revoke',
      resource: id!,
      correlationId: correlationIdOf(event),
    });
    return noContent();
  },
});
