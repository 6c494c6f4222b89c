/**
 * The WebSocket `$connect` authorizer (a REQUEST authorizer): browsers cannot set headers on a
 * WebSocket, so the token comes in the query string (`?token=`) or as a subprotocol in
 * `Sec-WebSocket-Protocol` (functions/runtime/protocol.ts). It answers an IAM policy — `Allow` with
 * the token's id, expiry, identity, scopes and resources as context for the routes, or `Deny`.
 * Least authority: a valid token is allowed only when it can use the socket (one of
 * `WEBSOCKET_SCOPES`, or admin); a `kv:read` token is denied.
 *
 * It never throws: a throw is a 500 to the client (and serverless-offline's), where a bad token
 * deserves a refusal. A backend that cannot be reached also denies, logged as an error. The
 * token itself is never logged.
 */
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { type Authenticated, authenticate } from '../lib/auth.js';
import { UnauthorizedError } from '../lib/errors.js';
import { logger } from './runtime/logger.js';
import { requestLogging, runtime } from './runtime/middleware.js';
import { protocolToken } from './runtime/protocol.js';
import { getStorage } from './runtime/storage.js';
import { canUseWebSocket, NO_WEBSOCKET_SCOPE } from './runtime/ws-access.js';

/**
 * What `$connect` and the other routes find in `requestContext.authorizer`. API Gateway accepts
 * only strings, numbers and booleans as context values, hence the joined and encoded lists.
 */
export interface AuthorizerContext {
  [key: string]: string;
  identity: string;
  tokenId: string;
  /** When the token expires (ISO-8601), or '' when it never does. */
  tokenExpiresAt: string;
  /** The token's scopes, comma-joined. */
  scopes: string;
  /** The token's resource globs as a JSON array. */
  resources: string;
}

const authorizer = async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
  const token = event.queryStringParameters?.token || protocolToken(event.headers) || undefined;
  let principal: Authenticated;
  try {
    principal = await authenticate(getStorage().tokens, token);
  } catch (error) {
    if (error instanceof UnauthorizedError) {
      logger.info('connection refused', { reason: error.message });
    } else {
      logger.error('connection refused: the token could not be checked', { error });
    }
    return policy('Deny', 'anonymous', event.methodArn);
  }
  if (!canUseWebSocket(principal.scopes)) {
    logger.info('connection refused', { reason: NO_WEBSOCKET_SCOPE, tokenId: principal.id });
    return policy('Deny', principal.identity, event.methodArn);
  }
  logger.info('connection authorized', { identity: principal.identity, tokenId: principal.id });
  const context: AuthorizerContext = {
    identity: principal.identity,
    tokenId: principal.id,
    tokenExpiresAt: principal.expiresAt ?? '',
    scopes: principal.scopes.join(','),
    resources: JSON.stringify(principal.resources),
  };
  return policy('Allow', principal.identity, event.methodArn, context);
};

function policy(
  effect: 'Allow' | 'Deny',
  principalId: string,
  resource: string,
  context?: AuthorizerContext,
): APIGatewayAuthorizerResult {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
    },
    ...(context ? { context } : {}),
  };
}

// Logging only: errors are answered above, as policies, never by an HTTP error middleware.
const logging = requestLogging(logger) as unknown as MiddlewareObj<
  APIGatewayRequestAuthorizerEvent,
  APIGatewayAuthorizerResult
>[];

export const handler = middy(authorizer).use(runtime('wsAuthorizer')).use(logging);
