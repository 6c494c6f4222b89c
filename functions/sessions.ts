/**
 * Session routes of docs/api.md, and the active-cluster checks executors and agents poll. A token's
 * resource globs apply to a session's cluster id: lists are filtered to the clusters the token
 * may see, single sessions of other clusters are refused.
 */
import { sessionServiceIdentity } from '../lib/auth.js';
import { NotFoundError, ValidationError } from '../lib/errors.js';
import type { JsonObject, Session } from '../lib/storage/types.js';
import { type ApiRequest, httpApi } from './runtime/api.js';
import { json, noContent } from './runtime/http.js';
import { pageOptions, readPage } from './runtime/paging.js';

/**
 * The live session, once the caller may see its cluster; `NotFoundError` when there is none. A
 * refusal names the session the caller asked for, not its cluster (another team's cluster id).
 */
async function liveSession({
  storage,
  params,
  authorizeRecord,
}: ApiRequest<unknown, unknown>): Promise<Session> {
  const session = await storage.sessions.get(params.id!);
  if (!session) throw new NotFoundError(`session ${JSON.stringify(params.id)} not found`);
  authorizeRecord(session.clusterId, `session ${JSON.stringify(params.id)}`);
  return session;
}

export const handler = httpApi('sessions', {
  // A session runs as the token's identity; only an admin token may name another.
  'POST /sessions': async ({ storage, body, principal, authorizeResource }) => {
    authorizeResource(body.clusterId);
    const serviceIdentity = sessionServiceIdentity(principal, body.serviceIdentity);
    const session = await storage.sessions.create({
      ...body,
      serviceIdentity,
      data: body.data as JsonObject | undefined,
    });
    return json(201, session);
  },

  'GET /sessions': async ({ storage, query, authorizeResource, allowsResource }) => {
    const { clusterId, correlationId } = query;
    if ((clusterId === undefined) === (correlationId === undefined)) {
      throw new ValidationError('query', 'give exactly one of clusterId or correlationId');
    }
    if (clusterId !== undefined) {
      authorizeResource(clusterId);
      return json(200, { sessions: await storage.sessions.byCluster(clusterId) });
    }
    const sessions = await storage.sessions.byCorrelation(correlationId!);
    return json(200, { sessions: sessions.filter((session) => allowsResource(session.clusterId)) });
  },

  'GET /sessions/{id}': async (request) => json(200, await liveSession(request)),

  'POST /sessions/{id}/keepalive': async (request) => {
    await liveSession(request);
    const session = await request.storage.sessions.keepAlive(request.params.id!, request.body.ttl);
    if (!session) throw new NotFoundError(`session ${JSON.stringify(request.params.id)} not found`);
    return json(200, session);
  },

  'DELETE /sessions/{id}': async (request) => {
    await liveSession(request);
    if (!(await request.storage.sessions.end(request.params.id!))) {
      throw new NotFoundError(`session ${JSON.stringify(request.params.id)} not found`);
    }
    return noContent();
  },

  // Only clusters within the caller's resources, filtered by the backend.
  'GET /clusters/active': async ({ storage, principal, query }) =>
    json(
      200,
      await readPage('GET /clusters/active', () =>
        storage.sessions.activeClusterPage({ ...pageOptions(query), within: principal.resources }),
      ),
    ),

  'GET /clusters/{clusterId}/active': async ({ storage, params: { clusterId }, authorizeResource }) => {
    authorizeResource(clusterId!);
    return json(200, { clusterId, active: await storage.sessions.isClusterActive(clusterId!) });
  },
});
