import { Logger } from '@aws-lambda-powertools/logger';

/**
 * One structured JSON logger per container, shared by every handler in the bundle.
 * Level from `POWERTOOLS_LOG_LEVEL` (or Lambda's `AWS_LAMBDA_LOG_LEVEL`); the request id and
 * API Gateway's request id are attached per invocation by `requestLogging` in `middleware.ts`.
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'kubently-storage' });
