/**
 * Token routes of API.md (admin scope): issue, list, revoke. Every issue and revoke is written
 * to the audit log with the identity that did it; the token secret never is.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { NotFoundError } from '../lib/errors.js';
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

export const handler = httpApi('tokens', {
  'POST /tokens': async ({ storage, body, principal, event }: ApiRequest<IssueTokenInput>) => {
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
