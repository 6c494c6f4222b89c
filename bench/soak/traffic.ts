/**
 * The load of a bounded load run: HTTP calls over kv, sessions, queues, channels and tokens,
 * started at a fixed rate whether or not earlier ones answered (open loop), and WebSocket
 * subscribers that must receive every message published to their channel.
 *
 * Each call's status is checked against what the route answers when it works; a 5xx or a call
 * that got no answer is a failure of the run, an unexpected 4xx is counted and reported.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

export interface RouteStats {
  route: string;
  calls: number;
  /** Latency of each answered call, ms. */
  latencies: number[];
  status5xx: number;
  /** 4xx the route does not answer when it works (e.g. a 404 for a key just written). */
  unexpected4xx: number;
  /** No HTTP answer (connection refused or reset, aborted after the per-call ceiling). */
  noAnswer: number;
  /** Count of each status the route should not answer, and the first such body. */
  otherStatuses: Record<number, number>;
  firstOtherBody?: string;
}

export interface Delivery {
  /** Messages whose publish was acknowledged (202), times subscribers. */
  expected: number;
  received: number;
  /** Frames of an id a subscriber had already received. */
  duplicates: number;
}

export interface QueueLedger {
  /** Ids whose send was acknowledged (201). */
  sent: Set<string>;
  /** Ids delivered by a receive, and how often. */
  received: Map<string, number>;
  acked: number;
}

/** A call that has not answered after this long is counted as unanswered (offline's own Lambda timeout is shorter). */
const CALL_CEILING_MS = 30_000;
/** Keys, sessions and receipts kept for the reading operations: bounded, so the run's data is too. */
const KEPT = 200;
const SUBSCRIBERS = 3;

type Op = () => Promise<void>;
/** The fields of the answers this load reads. */
interface Answer {
  id?: string;
  sessionId?: string;
  messages?: { id: string; receipt: string }[];
}

export class Traffic {
  readonly routes = new Map<string, RouteStats>();
  readonly queue: QueueLedger = { sent: new Set(), received: new Map(), acked: 0 };
  readonly delivery: Delivery = { expected: 0, received: 0, duplicates: 0 };
  /**
   * Most calls in flight at once per function (the first word of a route: kv, sessions, queue,
   * channel, tokens). serverless-offline starts another instance of a function only when all of
   * its instances are busy, so this bounds how many instances the load made it start.
   */
  readonly peakInFlight = new Map<string, number>();
  private readonly inFlightByFunction = new Map<string, number>();
  /** Scheduled calls not started because `maxInFlight` were still running. */
  skipped = 0;
  inFlight = 0;

  private readonly run = randomBytes(3).toString('hex');
  private readonly queueName = `soak-${this.run}`;
  private readonly channel = `soak-${this.run}`;
  private readonly keys: string[] = [];
  private readonly sessions: string[] = [];
  private readonly receipts: { id: string; receipt: string }[] = [];
  private readonly sockets: WebSocket[] = [];
  private readonly seen: Set<string>[] = [];
  private keyCounter = 0;
  private readonly mix: Op[];
  private next = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly wsUrl: string,
    private readonly token: string,
    private readonly maxInFlight: number,
  ) {
    const op = (weight: number, fn: Op): Op[] => Array(weight).fill(fn);
    // 20 calls per cycle; interleaved so each route is spread over the run.
    this.mix = interleave([
      op(3, () => this.kvPut()),
      op(3, () => this.kvGet()),
      op(1, () => this.kvDelete()),
      op(1, () => this.sessionCreate()),
      op(2, () => this.sessionGet()),
      op(1, () => this.sessionKeepalive()),
      op(2, () => this.queueSend()),
      op(2, () => this.queueReceive()),
      op(2, () => this.queueAck()),
      op(2, () => this.publish()),
      op(1, () => this.tokensList()),
    ]);
  }

  /** Opens the subscribers and waits until each confirmed its subscription. */
  async subscribe(): Promise<void> {
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const socket = new WebSocket(`${this.wsUrl}?token=${encodeURIComponent(this.token)}`);
      const seen = new Set<string>();
      this.sockets.push(socket);
      this.seen.push(seen);
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.once('unexpected-response', (_req, res) =>
          reject(new Error(`WebSocket refused: ${res.statusCode}`)),
        );
        socket.once('open', () =>
          socket.send(JSON.stringify({ action: 'subscribe', channel: this.channel })),
        );
        socket.on('message', (data) => {
          const frame = JSON.parse(String(data));
          if (frame.type === 'subscribed') resolve();
          else if (frame.type === 'error') reject(new Error(`subscribe: ${frame.code} ${frame.message}`));
          else if (frame.type === 'message' && frame.channel === this.channel) {
            if (seen.has(frame.id)) this.delivery.duplicates++;
            else {
              seen.add(frame.id);
              this.delivery.received++;
            }
          }
        });
      });
    }
  }

  /** Starts the next call of the mix, unless `maxInFlight` are running (then it is counted as skipped). */
  fire(): Promise<void> | undefined {
    if (this.inFlight >= this.maxInFlight) {
      this.skipped++;
      return undefined;
    }
    const op = this.mix[this.next++ % this.mix.length]!;
    this.inFlight++;
    return op().finally(() => {
      this.inFlight--;
    });
  }

  /** Receives and acknowledges what is left in the queue (bounded): the rest of the ledger. */
  async drainQueue(): Promise<void> {
    while (this.receipts.length > 0) await this.queueAck();
    for (let round = 0; round < 50; round++) {
      const answer = await this.call(
        'queue receive (drain)',
        'POST',
        `/queues/${this.queueName}/receive`,
        [200],
        {
          max: 100,
          visibilityTimeout: 60,
        },
      );
      const messages: { id: string; receipt: string }[] = answer?.messages ?? [];
      if (messages.length === 0) return;
      for (const m of messages) {
        this.noteReceived(m.id);
        const acked = await this.call('queue ack (drain)', 'POST', this.ackPath(m.id), [204], {
          receipt: m.receipt,
        });
        if (acked !== undefined) this.queue.acked++;
      }
    }
  }

  /** Subscribers that have not yet received every acknowledged publish. */
  deliveredAll(): boolean {
    return this.delivery.received >= this.delivery.expected;
  }

  close(): void {
    for (const socket of this.sockets) socket.terminate();
  }

  private async kvPut(): Promise<void> {
    const key = `soak-${this.run}-${this.keyCounter++ % KEPT}`;
    const done = await this.call('kv put', 'PUT', `/kv/${key}`, [200], { value: { n: this.keyCounter } });
    if (done !== undefined && !this.keys.includes(key)) this.keys.push(key);
  }

  private async kvGet(): Promise<void> {
    const key = this.keys[this.keys.length - 1];
    // A key deleted while this get was on its way answers 404: not a failure.
    if (key) await this.call('kv get', 'GET', `/kv/${key}`, [200, 404]);
  }

  private async kvDelete(): Promise<void> {
    const key = this.keys.shift();
    if (key) await this.call('kv delete', 'DELETE', `/kv/${key}`, [204, 404]);
  }

  private async sessionCreate(): Promise<void> {
    const session = await this.call('sessions create', 'POST', '/sessions', [201], {
      clusterId: `soak-${this.run}`,
      data: { at: Date.now() },
      ttl: 600,
    });
    if (session?.sessionId) {
      this.sessions.push(session.sessionId);
      if (this.sessions.length > KEPT) this.sessions.shift();
    }
  }

  private async sessionGet(): Promise<void> {
    const id = this.pick(this.sessions);
    if (id) await this.call('sessions get', 'GET', `/sessions/${id}`, [200]);
  }

  private async sessionKeepalive(): Promise<void> {
    const id = this.pick(this.sessions);
    if (id) await this.call('sessions keepalive', 'POST', `/sessions/${id}/keepalive`, [200], { ttl: 600 });
  }

  private async queueSend(): Promise<void> {
    const sent = await this.call('queue send', 'POST', `/queues/${this.queueName}/messages`, [201], {
      payload: { at: Date.now() },
    });
    if (sent?.id) this.queue.sent.add(sent.id);
  }

  private async queueReceive(): Promise<void> {
    const answer = await this.call('queue receive', 'POST', `/queues/${this.queueName}/receive`, [200], {
      max: 1,
      visibilityTimeout: 120,
    });
    for (const m of answer?.messages ?? []) {
      this.noteReceived(m.id);
      this.receipts.push({ id: m.id, receipt: m.receipt });
    }
  }

  private async queueAck(): Promise<void> {
    const lease = this.receipts.shift();
    if (!lease) return;
    const acked = await this.call('queue ack', 'POST', this.ackPath(lease.id), [204], {
      receipt: lease.receipt,
    });
    if (acked !== undefined) this.queue.acked++;
  }

  private async publish(): Promise<void> {
    const published = await this.call(
      'channel publish',
      'POST',
      `/channels/${this.channel}/messages`,
      [202],
      {
        message: { at: Date.now() },
      },
    );
    if (published?.id) this.delivery.expected += this.sockets.length;
  }

  private async tokensList(): Promise<void> {
    await this.call('tokens list', 'GET', '/tokens?limit=10', [200]);
  }

  private ackPath(id: string): string {
    return `/queues/${this.queueName}/messages/${encodeURIComponent(id)}/ack`;
  }

  private noteReceived(id: string): void {
    this.queue.received.set(id, (this.queue.received.get(id) ?? 0) + 1);
  }

  private pick(items: string[]): string | undefined {
    return items[Math.floor(Math.random() * items.length)];
  }

  /**
   * One HTTP call, recorded under `route`. Answers the parsed body when the status is one of
   * `ok` (`{}` for an empty body), undefined otherwise.
   */
  private async call(
    route: string,
    method: string,
    path: string,
    ok: number[],
    body?: unknown,
  ): Promise<Answer | undefined> {
    let stats = this.routes.get(route);
    if (!stats) {
      stats = {
        route,
        calls: 0,
        latencies: [],
        status5xx: 0,
        unexpected4xx: 0,
        noAnswer: 0,
        otherStatuses: {},
      };
      this.routes.set(route, stats);
    }
    stats.calls++;
    const fn = route.split(' ')[0]!;
    const running = (this.inFlightByFunction.get(fn) ?? 0) + 1;
    this.inFlightByFunction.set(fn, running);
    this.peakInFlight.set(fn, Math.max(running, this.peakInFlight.get(fn) ?? 0));
    try {
      return await this.timed(stats, method, path, ok, body);
    } finally {
      this.inFlightByFunction.set(fn, (this.inFlightByFunction.get(fn) ?? 1) - 1);
    }
  }

  private async timed(
    stats: RouteStats,
    method: string,
    path: string,
    ok: number[],
    body: unknown,
  ): Promise<Answer | undefined> {
    const started = performance.now();
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(CALL_CEILING_MS),
      });
      text = await response.text();
    } catch {
      stats.noAnswer++;
      return undefined;
    }
    stats.latencies.push(performance.now() - started);
    // serverless-offline answers a Lambda that timed out or threw with 200 and the error as the
    // body (where API Gateway would answer 502/504): a server error too.
    if (response.status >= 500 || isLambdaError(text)) stats.status5xx++;
    else if (!ok.includes(response.status)) stats.unexpected4xx++;
    if (!ok.includes(response.status) || isLambdaError(text)) {
      stats.otherStatuses[response.status] = (stats.otherStatuses[response.status] ?? 0) + 1;
      stats.firstOtherBody ??= text.slice(0, 300);
      return undefined;
    }
    return text ? JSON.parse(text) : {};
  }
}

function isLambdaError(text: string): boolean {
  return text.startsWith('{"errorMessage"') || /^\{[^{]*"errorType"/.test(text);
}

/** Round-robin over the groups, so equal weights alternate instead of running in blocks. */
function interleave(groups: Op[][]): Op[] {
  const out: Op[] = [];
  const longest = Math.max(...groups.map((g) => g.length));
  for (let i = 0; i < longest; i++) for (const g of groups) if (g[i]) out.push(g[i]!);
  return out;
}
