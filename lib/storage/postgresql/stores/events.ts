import { maxHistoryFor } from '../../../config/index.js';
import { type EventDriver, formatEventId, isoTime as iso } from '../../driver.js';
import type { EventHandler, Json, PublishedEvent } from '../../types.js';
import { parseJson } from '../../validate.js';
import { MAX_SWEEP_BATCHES, ms, NOW_MS, num, type StoreContext } from './context.js';

type EventRow = {
  id: number;
  message: string;
  at: number;
};

/**
 * A NOTIFY payload must be shorter than this many bytes (a limit of the server); an event
 * whose notification would not fit travels as its header alone and is read from history.
 */
const NOTIFY_PAYLOAD_LIMIT = 8000;

/** What a publish notifies: `[id, channel, publishedAtMs]` as JSON, then a newline and the message when it fits. */
interface EventNotice {
  id: number;
  channel: string;
  atMs: number;
  message: string | undefined;
}

function parseNotice(payload: string): EventNotice | undefined {
  const newline = payload.indexOf('\n');
  try {
    const header = JSON.parse(newline < 0 ? payload : payload.slice(0, newline)) as unknown;
    if (Array.isArray(header) && header.length === 3) {
      const [id, channel, atMs] = header as [number, string, number];
      return {
        id: Number(id),
        channel,
        atMs: Number(atMs),
        message: newline < 0 ? undefined : payload.slice(newline + 1),
      };
    }
  } catch {
    // Not a header: the `id:channel` notification of an older publisher.
  }
  const colon = payload.indexOf(':');
  const id = Number(payload.slice(0, colon));
  if (colon < 0 || !Number.isSafeInteger(id)) return undefined;
  return { id, channel: payload.slice(colon + 1), atMs: 0, message: undefined };
}

export function pgEvents(ctx: StoreContext) {
  const { config, table, query, wakeups, state } = ctx;
  const channelName = ctx.channels.events;
  const events = table('events');
  const channels = table('event_channels');
  const pollMs = Math.round(config.postgresql.pollInterval * 1000);
  // With notifications flowing, polling is only the safety net for one lost without a reconnect.
  const idlePollMs = () => (wakeups.isLive(channelName) ? Math.max(pollMs * 10, 5000) : pollMs);
  const boundOf = maxHistoryFor(config);
  const subscriptions = new Set<{ close(): void }>();

  const history = async (channel: string, after: number, limit: number): Promise<PublishedEvent[]> => {
    const rows = await query<EventRow>(
      // The bound applies on read too: publishers racing each other may each trim too little.
      `SELECT id::float8 AS id, message, ${ms('published_at')} AS at FROM ${events}
       WHERE channel = $1
         AND id > greatest($2::bigint, (SELECT last_id FROM ${channels} WHERE channel = $1) - $4::bigint)
       ORDER BY id LIMIT $3`,
      [channel, after, limit, boundOf(channel)],
    );
    return rows.map((row) => ({
      id: formatEventId(num(row.id)),
      channel,
      message: parseJson(row.message) as Json,
      publishedAt: iso(num(row.at)),
    }));
  };

  // The channel's counter row is locked until commit, so publishers of one channel commit in id
  // order. Events past the channel's bound are dropped in the same statement. Built once: a
  // statement's name is looked up by its text per call.
  const PUBLISH = `WITH c AS (
       INSERT INTO ${channels} AS c (channel, last_id) VALUES ($1, 1)
       ON CONFLICT (channel) DO UPDATE SET last_id = c.last_id + 1
       RETURNING last_id
     ), e AS (
       INSERT INTO ${events} (channel, id, message, published_at)
       SELECT $1, last_id, $2, ${NOW_MS} FROM c
       RETURNING id, published_at
     ), trimmed AS (
       DELETE FROM ${events} WHERE channel = $1 AND id <= (SELECT last_id FROM c) - $3::bigint RETURNING 1
     ), h AS (
       SELECT json_build_array(last_id, $1::text, ${ms(NOW_MS)}::bigint)::text AS header FROM c
     ), n AS (
       SELECT pg_notify('${channelName}', CASE
         WHEN octet_length(header) + 1 + octet_length($2) < ${NOTIFY_PAYLOAD_LIMIT} THEN header || E'\n' || $2
         ELSE header END) FROM h
     )
     SELECT id::float8 AS id, ${ms('published_at')} AS at,
       (SELECT count(*) FROM trimmed)::int AS trimmed, (SELECT count(*) FROM n)::int AS notified
     FROM e`;

  const driver: EventDriver = {
    async publish(channel, json, maxHistory) {
      const [row] = await query<{ id: number; at: number }>(PUBLISH, [channel, json, maxHistory]);
      return { id: formatEventId(num(row!.id)), publishedAt: iso(num(row!.at)) };
    },
    async last(channel) {
      const [row] = await query<{ id: number }>(
        `SELECT last_id::float8 AS id FROM ${channels} WHERE channel = $1`,
        [channel],
      );
      return row ? num(row.id) : 0;
    },
    history,
    async subscribe(channel, onEvent: EventHandler, onReconnect) {
      // An event that travels in its notification and follows the last one seen is handed on
      // as it is: no query. Otherwise a pump, woken by a notification for this channel or by its
      // timer, reads what was published since the last event seen (one query per wake-up,
      // however many events arrived). An event its notification carries that arrives while the
      // pump reads is kept and handed on after the read when it follows, so a small event next
      // to a large one costs no read of its own. The facade orders, deduplicates and fills gaps.
      let seen = await driver.last(channel);
      /** Events carried by notifications that arrived during a read, by id. */
      const carried = new Map<number, PublishedEvent>();
      let running = false;
      /** Reads failed in a row: the next is tried sooner than the idle poll, the events waiting. */
      let failures = 0;
      let again = false;
      let closed = false;
      let timer: NodeJS.Timeout | undefined;
      const pump = async () => {
        if (closed || state.closed) return;
        if (running) {
          again = true;
          return;
        }
        running = true;
        clearTimeout(timer);
        let failed = false;
        try {
          do {
            again = false;
            const page = await history(channel, seen, 1000);
            for (const event of page) {
              seen = Math.max(seen, Number(event.id));
              await onEvent(event);
            }
            if (page.length === 1000) again = true;
            for (let next = carried.get(seen + 1); next !== undefined; next = carried.get(seen + 1)) {
              carried.delete(seen + 1);
              seen += 1;
              await onEvent(next);
            }
            for (const id of carried.keys()) if (id <= seen) carried.delete(id);
            // Carried events after a gap: the gap is read next.
            if (carried.size > 0) again = true;
          } while (again && !closed);
        } catch {
          // Tried again soon (100 ms, doubling up to the idle poll), or by the next wake-up.
          failed = true;
        } finally {
          running = false;
          failures = failed ? failures + 1 : 0;
          if (!closed && !state.closed) {
            // Listening again if it failed before (see notifications()).
            void wakeups.listen(channelName, 0);
            const idle = idlePollMs();
            timer = setTimeout(pump, failed ? Math.min(100 * 2 ** (failures - 1), idle) : idle);
            timer.unref();
          }
        }
      };
      const off = wakeups.handle(channelName, (payload) => {
        if (payload === undefined) {
          onReconnect();
          void pump();
          return;
        }
        const notice = parseNotice(payload);
        if (notice === undefined || notice.channel !== channel || notice.id <= seen) return;
        const event: PublishedEvent | undefined =
          notice.message === undefined
            ? undefined
            : {
                id: formatEventId(notice.id),
                channel,
                message: parseJson(notice.message),
                publishedAt: iso(notice.atMs),
              };
        if (event !== undefined && running) {
          carried.set(notice.id, event);
          return;
        }
        if (event === undefined || notice.id !== seen + 1) {
          // The event did not fit in the notification, or one before it was missed: history has it.
          void pump();
          return;
        }
        seen = notice.id;
        void onEvent(event);
      });
      const subscription = {
        close() {
          closed = true;
          carried.clear();
          clearTimeout(timer);
          off();
        },
      };
      subscriptions.add(subscription);
      await wakeups.listen(channelName, 2000);
      timer = setTimeout(pump, idlePollMs());
      timer.unref();
      return async () => {
        subscription.close();
        subscriptions.delete(subscription);
      };
    },
  };

  /** Drops events past each channel's bound (a bound lowered since they were published). */
  const trim = async (batchSize: number): Promise<number> => {
    const smallest = Math.min(config.events.maxHistory, ...Object.values(config.events.maxHistoryByChannel));
    const over = await query<{ channel: string; last: number; first: number }>(
      `SELECT c.channel, c.last_id::float8 AS last, f.first::float8 AS first
       FROM ${channels} c CROSS JOIN LATERAL (SELECT min(id) AS first FROM ${events} WHERE channel = c.channel) f
       WHERE f.first IS NOT NULL AND c.last_id - f.first + 1 > $1`,
      [smallest],
    );
    let removed = 0;
    for (const { channel, last } of over) {
      const keepFrom = num(last) - boundOf(channel);
      for (let i = 0; i < MAX_SWEEP_BATCHES; i++) {
        const [row] = await query<{ n: number }>(
          `WITH d AS (DELETE FROM ${events} WHERE channel = $1 AND id IN (
             SELECT id FROM ${events} WHERE channel = $1 AND id <= $2 ORDER BY id LIMIT $3
           ) RETURNING 1) SELECT count(*)::int AS n FROM d`,
          [channel, keepFrom, batchSize],
        );
        removed += num(row?.n ?? 0);
        if (num(row?.n ?? 0) < batchSize) break;
      }
    }
    return removed;
  };

  return {
    driver,
    trim,
    close() {
      for (const s of subscriptions) s.close();
      subscriptions.clear();
    },
  };
}
