/**
 * X-Ray tracing with Powertools' Tracer, where it is on (`POWERTOOLS_TRACE_ENABLED=true`: the
 * deployed stages, whose functions have active tracing). Elsewhere — `npm start`, tests — the
 * tracer is never loaded and every function here is a no-op.
 *
 * - `tracing(name)`: middleware giving each invocation a `## name` subsegment (cold start and
 *   service annotated, errors recorded).
 * - `captureClient(client)`: an AWS SDK v3 client whose calls are subsegments.
 * - `traceCall(name, annotations, fn)`: one subsegment around `fn` (the storage's operations, see
 *   functions/runtime/instrument.ts), annotated so traces can be searched by backend and operation.
 */

import type { Tracer } from '@aws-lambda-powertools/tracer';
import type { MiddlewareObj } from '@middy/core';
import { logger } from './logger.js';

type Segment = NonNullable<ReturnType<Tracer['getSegment']>>;

let tracer: Tracer | undefined;
let loading: Promise<Tracer | undefined> | undefined;

function tracingOn(): boolean {
  return process.env.POWERTOOLS_TRACE_ENABLED === 'true';
}

/** The tracer, loaded on first call where tracing is on; undefined elsewhere. */
export function loadTracer(): Promise<Tracer | undefined> {
  loading ??= tracingOn()
    ? import('@aws-lambda-powertools/tracer')
        .then(({ Tracer }) => {
          tracer = new Tracer({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || 'kubently-storage' });
          return tracer;
        })
        .catch((error: unknown) => {
          // A build without the tracer (local stages leave it out): untraced, not broken.
          logger.warn('tracing is on but the tracer cannot be loaded: not tracing', { error });
          return undefined;
        })
    : Promise.resolve(undefined);
  return loading;
}

/** `client`, captured by the tracer when it is loaded (clients are created after `tracing()` ran). */
export function captureClient<T>(client: T): T {
  return tracer ? tracer.captureAWSv3Client(client) : client;
}

/** Runs `fn` in a subsegment `name` with `annotations` when tracing; just runs it otherwise. */
export async function traceCall<T>(
  name: string,
  annotations: Record<string, string>,
  fn: () => Promise<T>,
): Promise<T> {
  const parent = tracer?.getSegment();
  if (!parent) return fn();
  const subsegment = parent.addNewSubsegment(name);
  for (const [key, value] of Object.entries(annotations)) subsegment.addAnnotation(key, value);
  try {
    return await fn();
  } catch (error) {
    subsegment.addError(error as Error);
    throw error;
  } finally {
    subsegment.close();
  }
}

/** One `## name` subsegment per invocation, where tracing is on. Register it first. */
export function tracing<Event, Result>(name: string): MiddlewareObj<Event, Result> {
  let segment: Segment | undefined;
  let handler: Segment | undefined;
  const end = (error?: unknown) => {
    if (!tracer || !handler || !segment) return;
    if (error !== undefined) handler.addError(error as Error);
    handler.close();
    tracer.setSegment(segment);
    handler = undefined;
    segment = undefined;
  };
  return {
    before: async () => {
      const active = await loadTracer();
      segment = active?.getSegment();
      if (!active || !segment) return;
      handler = segment.addNewSubsegment(`## ${name}`);
      active.setSegment(handler);
      active.annotateColdStart();
      active.addServiceNameAnnotation();
    },
    after: () => end(),
    onError: ({ error }) => end(error),
  };
}
