/**
 * The relay's switch to the asynchronous fan-out above `FANOUT_THRESHOLD`, and the fanout
 * function itself, on memory, Redis and PostgreSQL. The real AWS SDK clients talk to a local
 * stand-in for Lambda's Invoke API and API Gateway's management API.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeEach, expect, it, vi } from 'vitest';
import { createStorage } from '../../lib/storage/index.js';
import type { PublishedEvent, Storage } from '../../lib/storage/types.js';
import { relayEnv, startAwsStub } from '../support/aws-stub.js';
import { lambdaContext } from '../support/lambda.js';
import { describeOnBackends } from './api-support.js';

process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';

const FUNCTION_NAME = 'kubently-storage-test-fanout';
const THRESHOLD = 3;

const stub = await startAwsStub();
const saved = { ...process.env };
const env = { ...relayEnv(stub), FANOUT_THRESHOLD: String(THRESHOLD), FANOUT_FUNCTION_NAME: FUNCTION_NAME };
Object.assign(process.env, env);
delete process.env.IS_OFFLINE;

const { relayEvent } = await import('../../functions/runtime/relay.js');
const { useStorage } = await import('../../functions/runtime/storage.js');
const { configFromEnv } = await import('../../lib/config/index.js');
const { handler: fanout } = await import('../../functions/fanout.js');
const { logger } = await import('../../functions/runtime/logger.js');

afterAll(async () => {
  await stub.close();
  process.env = saved;
});

beforeEach(() => {
  stub.reset();
  Object.assign(process.env, env);
});
afterEach(() => {
  vi.restoreAllMocks();
  expect(stub.unexpected).toEqual([]);
});

/** Registers `count` connections subscribed to `channel`; answers their ids. */
async function subscribers(storage: Storage, channel: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `c${String(i).padStart(5, '0')}-${randomUUID()}`);
  // In batches: enough parallelism to be quick, little enough for a small connection pool.
  for (let i = 0; i < ids.length; i += 50) {
    await Promise.all(
      ids.slice(i, i + 50).map(async (connectionId) => {
        await storage.connections.register({
          connectionId,
          identity: 'agent',
          tokenId: `t-${connectionId}`,
          scopes: ['admin'],
          resources: ['*'],
        });
        expect(await storage.connections.subscribe(connectionId, channel)).toBe(true);
      }),
    );
  }
  return ids;
}

async function published(storage: Storage, channel: string, message: PublishedEvent['message']) {
  const { id, publishedAt } = await storage.events.publish(channel, message);
  return { id, channel, message, publishedAt } satisfies PublishedEvent;
}

function messageFrame(event: PublishedEvent) {
  return { type: 'message', ...event };
}

async function invokeFanout(input: unknown) {
  return fanout(input, lambdaContext('fanout'));
}

await describeOnBackends('fan-out', ({ storage }) => {
  it('up to FANOUT_THRESHOLD subscribers are served by the publishing invocation itself', async () => {
    const channel = `few-${randomUUID()}`;
    const ids = await subscribers(storage(), channel, THRESHOLD);
    const event = await published(storage(), channel, { n: 1 });

    await relayEvent(storage(), event);

    expect(stub.invocations).toEqual([]);
    for (const id of ids) expect(stub.framesFor(id)).toEqual([messageFrame(event)]);
  });

  it('above FANOUT_THRESHOLD the relay invokes the fanout function asynchronously and posts nothing itself', async () => {
    const channel = `many-${randomUUID()}`;
    const ids = await subscribers(storage(), channel, THRESHOLD + 1);
    const event = await published(storage(), channel, { n: 2 });

    await relayEvent(storage(), event);

    expect(stub.invocations).toEqual([
      { functionName: FUNCTION_NAME, invocationType: 'Event', payload: { channel, event } },
    ]);
    expect(stub.frames.size).toBe(0);

    // The fanout function, given what was invoked, delivers to every subscriber.
    const result = await invokeFanout(stub.invocations[0]!.payload);
    expect(result).toMatchObject({ channel, id: event.id, subscribers: ids.length, delivered: ids.length });
    for (const id of ids) expect(stub.framesFor(id)).toEqual([messageFrame(event)]);
  });

  it('FANOUT_THRESHOLD=0 hands every publish with subscribers to the fanout function', async () => {
    useStorage(storage(), configFromEnv({ ...process.env, FANOUT_THRESHOLD: '0' }));
    try {
      const channel = `zero-${randomUUID()}`;
      await subscribers(storage(), channel, 1);
      await relayEvent(storage(), await published(storage(), channel, 'x'));
      expect(stub.invocations).toHaveLength(1);
      expect(stub.frames.size).toBe(0);

      // No subscribers: nothing to invoke.
      stub.reset();
      await relayEvent(storage(), await published(storage(), `${channel}-empty`, 'x'));
      expect(stub.invocations).toEqual([]);
    } finally {
      useStorage(storage(), configFromEnv());
    }
  });

  it('the fanout function pages through every subscriber, removes 410s and logs the counts and duration', async () => {
    const channel = `pages-${randomUUID()}`;
    const ids = await subscribers(storage(), channel, 1005);
    const [gone1, gone2, failing] = [ids[3]!, ids[1002]!, ids[500]!];
    await storage().connections.subscribe(gone1, `${channel}-also`);
    stub.gone.add(gone1);
    stub.gone.add(gone2);
    stub.failing.add(failing);
    const event = await published(storage(), channel, { big: 'fan-out' });
    const info = vi.spyOn(logger, 'info');

    const result = await invokeFanout({ channel, event });

    expect(result).toEqual({
      channel,
      id: event.id,
      subscribers: 1005,
      delivered: 1002,
      gone: 2,
      failed: 1,
      durationMs: expect.any(Number),
    });
    expect(info).toHaveBeenCalledWith(
      'fan-out done',
      expect.objectContaining({
        channel,
        id: event.id,
        delivered: 1002,
        gone: 2,
        failed: 1,
        durationMs: expect.any(Number),
      }),
    );
    expect(stub.frames.size).toBe(1002);
    for (const id of ids) {
      if (id === gone1 || id === gone2 || id === failing) expect(stub.framesFor(id)).toEqual([]);
      else expect(stub.framesFor(id)).toEqual([messageFrame(event)]);
    }
    // The stale connections are gone with all their subscriptions; a failing one is kept.
    for (const id of [gone1, gone2]) expect(await storage().connections.get(id)).toBeUndefined();
    expect((await storage().connections.subscribers(`${channel}-also`)).connectionIds).toEqual([]);
    expect(await storage().connections.get(failing)).toBeDefined();
  });

  it('when the fanout function cannot be invoked, the relay delivers in this invocation instead', async () => {
    stub.invokeStatus = 500;
    const channel = `fallback-${randomUUID()}`;
    const ids = await subscribers(storage(), channel, THRESHOLD + 2);
    const event = await published(storage(), channel, 'fallback');
    const errors = vi.spyOn(logger, 'error');

    await relayEvent(storage(), event);

    expect(stub.invocations.length).toBeGreaterThanOrEqual(1);
    expect(errors).toHaveBeenCalledWith(
      'fan-out function could not be invoked: relaying in this invocation',
      expect.objectContaining({ functionName: FUNCTION_NAME }),
    );
    for (const id of ids) expect(stub.framesFor(id)).toEqual([messageFrame(event)]);
  });

  it('without FANOUT_FUNCTION_NAME the relay serves every subscriber itself', async () => {
    delete process.env.FANOUT_FUNCTION_NAME;
    const channel = `unnamed-${randomUUID()}`;
    const ids = await subscribers(storage(), channel, THRESHOLD + 1);
    const event = await published(storage(), channel, 1);
    await relayEvent(storage(), event);
    expect(stub.invocations).toEqual([]);
    for (const id of ids) expect(stub.framesFor(id)).toEqual([messageFrame(event)]);
  });
});

it('the fanout function logs and drops input that is not {channel, event}, posting nothing', async () => {
  const errors = vi.spyOn(logger, 'error');
  const event = { id: '0000000001', channel: 'a', message: 1, publishedAt: new Date().toISOString() };
  const bad: [unknown, RegExp][] = [
    [null, /must be an object/],
    ['text', /must be an object/],
    [{}, /channel: expected a string/],
    [{ channel: 'a' }, /event must be an object/],
    [{ channel: '', event }, /channel: must not be empty/],
    [{ channel: 'b', event }, /event.channel must equal channel/],
    [{ channel: 'a', event: { ...event, id: 7 } }, /event.id/],
    [{ channel: 'a', event: { ...event, publishedAt: 'yesterday' } }, /event.publishedAt/],
    [
      { channel: 'a', event: { id: 'x', channel: 'a', publishedAt: event.publishedAt } },
      /event.message is missing/,
    ],
    [{ channel: 'a', event, extra: true }, /unknown fields: extra/],
  ];
  for (const [input, reason] of bad) {
    const result = await invokeFanout(input);
    expect(result, JSON.stringify(input)).toMatchObject({
      delivered: 0,
      error: expect.stringMatching(reason),
    });
  }
  expect(errors).toHaveBeenCalledTimes(bad.length);
  expect(stub.frames.size).toBe(0);
});

it('relayEvent never throws: an unreachable registry or a missing endpoint is logged', async () => {
  const errors = vi.spyOn(logger, 'error');
  const down = createStorage({
    backend: 'redis',
    redis: { url: 'redis://127.0.0.1:1', connectTimeout: 0.3, commandTimeout: 0.5, maxRetriesPerRequest: 0 },
  });
  const event = { id: '1', channel: 'a', message: 1, publishedAt: new Date().toISOString() };
  try {
    await expect(relayEvent(down, event)).resolves.toBeUndefined();
    expect(errors).toHaveBeenCalledWith(
      'event not relayed',
      expect.objectContaining({ channel: 'a', id: '1' }),
    );

    delete process.env.WEBSOCKET_ENDPOINT;
    const memory = createStorage({ backend: 'memory' });
    await expect(relayEvent(memory, event)).resolves.toBeUndefined();
    expect(errors).toHaveBeenCalledWith(
      'event not relayed: no WebSocket endpoint (set WEBSOCKET_ENDPOINT)',
      expect.objectContaining({ channel: 'a' }),
    );
    await memory.close();
  } finally {
    await down.close();
  }
});
