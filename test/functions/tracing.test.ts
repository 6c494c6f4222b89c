/**
 * Tracing: where `POWERTOOLS_TRACE_ENABLED` is true, every store call is an X-Ray subsegment named
 * by its operation and annotated with `backend` and `operation` (a failed call records its
 * error); elsewhere the tracer is not even loaded and calls run as they are.
 */
import AWSXRay from 'aws-xray-sdk-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createStorage } from '../../lib/storage/index.js';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

async function fresh(traceEnabled: string) {
  vi.resetModules();
  vi.stubEnv('POWERTOOLS_TRACE_ENABLED', traceEnabled);
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
  // No X-Ray daemon here: closed segments go nowhere.
  vi.stubEnv('AWS_XRAY_CONTEXT_MISSING', 'IGNORE_ERROR');
  const tracing = await import('../../functions/runtime/tracing.js');
  const { instrumentStorage } = await import('../../functions/runtime/instrument.js');
  return { tracing, instrumentStorage };
}

describe('tracing', () => {
  it('store calls are subsegments annotated with backend and operation; a failure is recorded', async () => {
    const { tracing, instrumentStorage } = await fresh('true');
    const tracer = await tracing.loadTracer();
    expect(tracer).toBeDefined();
    // The invocation's segment, as Lambda's facade segment would be.
    const segment = new AWSXRay.Segment('kubently-storage-test');
    vi.spyOn(tracer!, 'getSegment').mockReturnValue(segment);
    const failures: unknown[] = [];
    const storage = instrumentStorage(createStorage({ backend: 'memory' }), (error) => failures.push(error));

    await storage.kv.set('k', 1);
    expect(await storage.kv.get('k')).toBe(1);
    await expect(storage.kv.set('', 1)).rejects.toMatchObject({ code: 'bad_request' });

    const subsegments = (segment.subsegments ?? []) as unknown as {
      name: string;
      annotations: Record<string, string>;
      fault?: boolean;
      error?: boolean;
      cause?: unknown;
      in_progress?: boolean;
    }[];
    expect(subsegments.map((s) => [s.name, s.annotations])).toEqual([
      ['kv.set', { backend: 'memory', operation: 'kv.set' }],
      ['kv.get', { backend: 'memory', operation: 'kv.get' }],
      ['kv.set', { backend: 'memory', operation: 'kv.set' }],
    ]);
    expect(subsegments.every((s) => !s.in_progress)).toBe(true);
    expect(subsegments[2]!.cause).toBeDefined();
    expect(failures).toHaveLength(1);
    await storage.close();
  });

  it('off (local runs): no tracer is loaded and store calls run as they are', async () => {
    const { tracing, instrumentStorage } = await fresh('');
    expect(await tracing.loadTracer()).toBeUndefined();
    const storage = instrumentStorage(createStorage({ backend: 'memory' }), () => {});
    await storage.kv.set('k', 2);
    expect(await storage.kv.get('k')).toBe(2);
    expect(tracing.captureClient('client')).toBe('client');
    await storage.close();
  });
});
