/**
 * `GET /health` (no auth): docs/api.md's Health contract. 200 with `ok` or `degraded`, 503 with
 * `down` when nothing serves, including when the configuration is invalid.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { BackendUnavailableError, ConfigError, isStorageError } from '../lib/errors.js';
import type { HealthReport, Storage } from '../lib/storage/types.js';
import { routeMetrics } from './runtime/api.js';
import { configErrorMessage } from './runtime/errors.js';
import { errorBody, type HttpResponse, json } from './runtime/http.js';
import { logger } from './runtime/logger.js';
import { httpErrors, requestLogging, runtime } from './runtime/middleware.js';
import { getStorage } from './runtime/storage.js';

// Monitors poll this; a cached answer would hide an outage.
const NO_STORE = { 'cache-control': 'no-store' };

const health = async (_event: APIGatewayProxyEventV2): Promise<HttpResponse> => {
  let storage: Storage;
  try {
    storage = getStorage();
  } catch (error) {
    const backend = process.env.STORAGE_BACKEND || 'unknown';
    if (error instanceof BackendUnavailableError) {
      // The secrets the configuration needs could not be fetched: which ones is for the log only.
      logger.error('storage not built', { error });
      return down(backend, `${error.backend} is unavailable`);
    }
    if (!(error instanceof ConfigError)) throw error;
    logger.error('invalid storage configuration', { problems: error.problems });
    return down(backend, configErrorMessage(error));
  }

  let report: HealthReport;
  try {
    report = await storage.health();
  } catch (error) {
    // health() reports an unreachable backend in its checks; a throw means it could not even ask.
    if (!isStorageError(error)) throw error;
    logger.error('health check failed', { code: error.code, error });
    return down(storage.backend, error.message);
  }

  // Check errors carry driver messages (hosts, ports): logged here, never shown to callers.
  const checks: Record<string, { ok: boolean; latencyMs: number }> = {};
  for (const [name, { ok, latencyMs }] of Object.entries(report.checks)) checks[name] = { ok, latencyMs };
  if (report.status !== 'ok') logger.warn('storage not healthy', { report });

  const body = { status: report.status, backend: report.backend, checks };
  return json(report.status === 'down' ? 503 : 200, body, NO_STORE);
};

function down(backend: string, message: string): HttpResponse {
  return json(503, { status: 'down', backend, checks: {}, ...errorBody('unavailable', message) }, NO_STORE);
}

export const handler = middy(health)
  .use(runtime('health'))
  .use(routeMetrics('health'))
  .use(requestLogging(logger))
  .use(httpErrors(logger));
