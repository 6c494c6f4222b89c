/**
 * Token routes of API.md (admin scope): issue, list, revoke. Every issue and revoke is written
 * to the audit log with the identity that did it; the token secret never is.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { Principal } from '../lib/auth.js';
import { ForbiddenError, NotFoundError } from '../lib/errors.js';
import { matchesAny } from '../lib/glob.js';
import type { IssueTokenInput } from '../lib/storage/types.js';
import { type ApiRequest, httpApi } from './lib/api.js';
import { json, noContent } from './lib/http.js';

/** The caller's correlation id (`X-Correlation-Id`), else API Gateway's request id. */
function correlationIdOf(event: APIGatewayProxyEventV2): string | undefined {
  const header = Object.entries(event.headers ?? {}).find(
    ([name]) => name.toLowerCase() === 'x-correlation-id',
  )?.[1];
  const id = header?.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  return id && id.length <= 255 && !/[\u0000-\u001f\u007f]/.test(id) ? id : event.requestContext?.requestId;
}

/**
 * An admin whose token is limited to some resources may only issue tokens within them: each
 * requested pattern, read as a plain string, must be matched by one of the issuer's globs. That
 * is sound (a glob matching the pattern's text matches every name the pattern matches, its `*`
 * absorbing whatever the pattern's `*` stands for), if not complete.
 */
function refuseEscalation(issuer: Principal, requested: string[]): void {
  const wider = requested.filter((pattern) => !matchesAny(issuer.resources, pattern));
  if (wider.length > 0) {
    throw new ForbiddenError(
      `token may not issue access to ${wider.map((p) => JSON.stringify(p)).join(', ')} beyond its own resources (${issuer.resources.join(', ')})`,
    );
  }
}

export const handler = httpApi('tokens', {
  'POST /tokens': async ({ storage, body, principal, event }: ApiRequest<IssueTokenInput>) => {
    refuseEscalation(principal, body.resources ?? ['*']);
    const { token, id, identity, scopes, resources, expiresAt } = await storage.tokens.issue(body);
    await storage.audit.append({
      identity: principal.identity,
      action: 'tokens.issue',
      resource: id,
      correlationId: correlationIdOf(event),
      details: { identity, scopes, resources, expiresAt },
    });
    return json(201, { id, token, identity, scopes, resources, expiresAt });
  },

  'GET /tokens': async ({ storage }) => json(200, { tokens: await storage.tokens.list() }),

  'DELETE /tokens/{id}': async ({ storage, params: { id }, principal, event }) => {
    if (!(await storage.tokens.revoke(id!))) throw new NotFoundError(`token ${JSON.stringify(id)} not found`);
    await storage.audit.append({
      identity: principal.identity,
      action: 'tokens.revoke',
      resource: id!,
      correlationId: correlationIdOf(event),
    });
    return noContent();
  },
});
