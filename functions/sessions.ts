/**
 * Session routes of docs/api.md, and the active-cluster checks executors and agents poll. A token's
 * resource globs apply to a session's cluster id: lists are filtered to the clusters the token
 * may see, single sessions of other clusters are refused.
 */
import { NotFoundError, ValidationError } from '../lib/errors.js';
import type { CreateSessionInput, JsonObject, Session } from '../lib/storage/types.js';
import { type ApiRequest, httpApi } from './lib/api.js';
import { json, noContent } from './lib/http.js';

/** The live session, once the caller may see its cluster; `NotFoundError` when there is none. */
async function liveSession({
  storage,
  params,
  authorizeResource,
}: ApiRequest<unknown, unknown>): Promise<Session> {
  const session = await storage.sessions.get(params.id!);
  if (!session) throw new NotFoundError(`session ${JSON.stringify(params.id)} not found`);
  authorizeResource(session.clusterId);
  return session;
}

export const handler = httpApi('sessions', {
  'POST /sessions': async ({ storage, body, authorizeResource }: ApiRequest<CreateSessionInput>) => {
    authorizeResource(body.clusterId);
    const session = await storage.sessions.create({ ...body, data: body.data as JsonObject | undefined });
    return json(201, session);
  },

  'GET /sessions': async ({
    storage,
    query,
    authorizeResource,
    allowsResource,
  }: ApiRequest<unknown, { clusterId?: string; correlationId?: string }>) => {
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

  'POST /sessions/{id}/keepalive': async (request: ApiRequest<{ ttl?: number }>) => {
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

  'GET /clusters/active': async ({ storage, allowsResource }) => {
    const clusters = await storage.sessions.activeClusters();
    return json(200, { clusters: clusters.filter((clusterId) => allowsResource(clusterId)) });
  },

  'GET /clusters/{clusterId}/active': async ({ storage, params: { clusterId }, authorizeResource }) => {
    authorizeResource(clusterId!);
    return json(200, { clusterId, active: await storage.sessions.isClusterActive(clusterId!) });
  },
});
