/**
 * Schema migrations inside the deployment: a CloudFormation custom resource (deploy/resources.cjs)
 * invokes this function on every deploy, before the other functions are updated. It applies the
 * pending files of migrations/ (packaged with it) to the configured schema — each once, under
 * the schema's advisory lock (lib/storage/postgresql/schema-migrations.ts), so concurrent runs are safe —
 * from inside the VPC, where the database is reachable, and answers CloudFormation through the
 * pre-signed response URL: a migration that fails fails the deploy with its message, and the
 * stack rolls back. Deleting the stack keeps the schema and its data.
 *
 * Never throws: CloudFormation waits for an answer (an hour, or the resource's ServiceTimeout)
 * and only the response URL gives one.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { backendsUsed } from '../lib/config/index.js';
import { ConfigError } from '../lib/errors.js';
import { applySchemaMigrations, SchemaMigrationError } from '../lib/storage/postgresql/schema-migrations.js';
import { createSql, type Sql } from '../lib/storage/postgresql/sql.js';
import { logger } from './runtime/logger.js';
import { runtime } from './runtime/middleware.js';
import { getStorageConfig } from './runtime/storage.js';

/** The migration files beside this function: migrations/ of the repository, of the package on Lambda. */
export const PACKAGED_MIGRATIONS = fileURLToPath(new URL('../migrations/', import.meta.url));
/** Time kept back from the function's timeout to answer CloudFormation. */
const ANSWER_MARGIN_MS = 15_000;
/** CloudFormation refuses a response over 4 KiB: reasons are cut well below. */
const MAX_REASON = 2000;
/** Migrations may build indexes on big tables: statements get this long (seconds). */
const STATEMENT_TIMEOUT_SECONDS = 600;

export interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  ResponseURL: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
  PhysicalResourceId?: string;
  ResourceProperties?: Record<string, unknown>;
}

export interface CustomResourceResponse {
  Status: 'SUCCESS' | 'FAILED';
  Reason: string;
  PhysicalResourceId: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
  Data: Record<string, string>;
}

interface Outcome {
  status: CustomResourceResponse['Status'];
  reason: string;
  data: Record<string, string>;
}

/** Where migrations are read from; tests point it elsewhere. */
let migrationsDir = PACKAGED_MIGRATIONS;
export function useMigrationsDir(dir: string): void {
  migrationsDir = dir;
}

const migrateSchema = async (
  event: CustomResourceEvent,
  context: Context,
): Promise<CustomResourceResponse> => {
  const outcome =
    event.RequestType === 'Delete'
      ? { status: 'SUCCESS' as const, reason: 'the schema and its data are kept', data: {} }
      : await applyMigrations(context);
  const response: CustomResourceResponse = {
    Status: outcome.status,
    Reason: outcome.reason.slice(0, MAX_REASON),
    // Stable across updates: a new id would have CloudFormation "delete" the previous one.
    PhysicalResourceId: event.PhysicalResourceId ?? `${event.LogicalResourceId}-schema`,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    Data: outcome.data,
  };
  (outcome.status === 'SUCCESS' ? logger.info : logger.error).call(logger, 'schema migrations', {
    requestType: event.RequestType,
    status: outcome.status,
    reason: outcome.reason,
  });
  try {
    await putResponse(event.ResponseURL, JSON.stringify(response));
  } catch (error) {
    logger.error('CloudFormation could not be answered', { error });
  }
  return response;
};

async function applyMigrations(context: Context): Promise<Outcome> {
  let sql: Sql | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const config = getStorageConfig();
    if (!backendsUsed(config).has('postgresql')) {
      return {
        status: 'SUCCESS',
        reason: 'nothing to migrate: the configuration uses no PostgreSQL',
        data: {},
      };
    }
    const schema = config.postgresql.schema;
    const budget = Math.max(1000, context.getRemainingTimeInMillis() - ANSWER_MARGIN_MS);
    // No LISTEN connection; one connection is all a migration uses. No statement outlives the
    // budget: the server cancels it and its migration rolls back, so a FAILED answer is true.
    sql = await createSql({
      ...config.postgresql,
      listen: false,
      poolSize: 1,
      minPoolSize: 0,
      commandTimeout: Math.min(STATEMENT_TIMEOUT_SECONDS, Math.floor(budget / 1000)),
    });
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `migrations did not finish within ${Math.round(budget / 1000)} s (the migrate function's timeout less ` +
                `${ANSWER_MARGIN_MS / 1000} s to answer); run them from a machine in the VPC (npm run migrate:schema) and deploy again`,
            ),
          ),
        budget,
      );
    });
    const result = await Promise.race([applySchemaMigrations(sql, { schema, dir: migrationsDir }), deadline]);
    const applied = result.applied.map((m) => m.file);
    return {
      status: 'SUCCESS',
      reason:
        `schema ${JSON.stringify(schema)} at version ${result.version}` +
        (applied.length > 0 ? ` (applied ${applied.join(', ')})` : ' (up to date)'),
      data: { Version: String(result.version), Applied: applied.join(',') },
    };
  } catch (error) {
    return { status: 'FAILED', reason: describe(error), data: {} };
  } finally {
    clearTimeout(timer);
    await sql?.close().catch(() => {});
  }
}

function describe(error: unknown): string {
  if (error instanceof ConfigError) return `invalid configuration: ${error.problems.join('; ')}`;
  // Its message already says which migration failed and why: "postgresql unavailable" misleads.
  if (error instanceof SchemaMigrationError)
    return error.message.replace(`${error.backend} unavailable: `, '');
  return error instanceof Error ? error.message : String(error);
}

/** PUTs `body` to CloudFormation's pre-signed URL (an empty content type, as it was signed). */
function putResponse(url: string, body: string): Promise<void> {
  const target = new URL(url);
  const send = target.protocol === 'http:' ? httpRequest : httpsRequest;
  return new Promise((resolve, reject) => {
    const put = send(
      target,
      { method: 'PUT', headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) } },
      (response) => {
        response.resume();
        response.on('end', () =>
          (response.statusCode ?? 0) < 300
            ? resolve()
            : reject(new Error(`the response URL answered ${response.statusCode}`)),
        );
      },
    );
    put.on('error', reject);
    put.end(body);
  });
}

const logging = injectLambdaContext(logger, { resetKeys: true }) as MiddlewareObj<
  CustomResourceEvent,
  CustomResourceResponse
>;

export const handler = middy(migrateSchema)
  .use(runtime<CustomResourceEvent, CustomResourceResponse>('migrate'))
  .use(logging);
