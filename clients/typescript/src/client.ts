import { segment, Transport, type TransportOptions } from './http.js';
import { type PushReceiveOptions, PushReceiver } from './receive.js';
import { type SubscribeOptions, Subscription } from './subscribe.js';
import type {
  ChannelEvent,
  CreateSession,
  IssuedToken,
  IssueToken,
  KvEntry,
  KvSetOptions,
  KvSetResult,
  Published,
  QueueMessage,
  QueueStats,
  ReceiveOptions,
  SendOptions,
  Session,
} from './types.js';
import type { WebSocketFactory } from './websocket.js';

export interface ClientOptions extends TransportOptions {
  /** The WebSocket endpoint, e.g. `wss://abc.execute-api.eu-west-1.amazonaws.com/prod` or `ws://localhost:3001`; needed by subscribe and receive. */
  wsUrl?: string;
  /** How to open a socket; default the `ws` package on Node, the global WebSocket elsewhere. */
  webSocket?: WebSocketFactory;
}

/** The HTTP API, one method per route, and `subscribe` and `receive` over the WebSocket. */
export class StorageClient {
  readonly http: Transport;
  readonly kv: KvApi;
  readonly sessions: SessionsApi;
  readonly queues: QueuesApi;
  readonly events: EventsApi;
  readonly tokens: TokensApi;

  constructor(private readonly options: ClientOptions) {
    this.http = new Transport(options);
    this.kv = new KvApi(this.http);
    this.sessions = new SessionsApi(this.http);
    this.queues = new QueuesApi(this.http);
    this.events = new EventsApi(this.http);
    this.tokens = new TokensApi(this.http);
  }

  /**
   * Follows a channel over the WebSocket: every event published after `after` (or, without it,
   * after the subscription is confirmed), once each, oldest first, across reconnects.
   */
  subscribe(channel: string, options: SubscribeOptions = {}): Subscription {
    if (!this.options.wsUrl) throw new TypeError('subscribe needs the wsUrl option');
    return new Subscription(
      {
        wsUrl: this.options.wsUrl,
        webSocket: this.options.webSocket,
        events: this.events,
        token: this.http.token,
      },
      channel,
      options,
    );
  }

  /** True when the client has a WebSocket endpoint (`wsUrl`): `subscribe` and `receive` work. */
  get hasWebSocket(): boolean {
    return Boolean(this.options.wsUrl);
  }

  /**
   * Leased messages of `queue` pushed over the WebSocket as they arrive (no long poll), with
   * `ack`, `nack` and `extend` on the receiver; reconnects and receives again when the socket drops.
   */
  receive(queue: string, options: PushReceiveOptions = {}): PushReceiver {
    if (!this.options.wsUrl) throw new TypeError('receive needs the wsUrl option');
    return new PushReceiver(
      { wsUrl: this.options.wsUrl, webSocket: this.options.webSocket, token: this.http.token },
      queue,
      options,
    );
  }
}

export class KvApi {
  constructor(private readonly http: Transport) {}
  set(key: string, value: unknown, options: KvSetOptions = {}): Promise<KvSetResult> {
    return this.http.request('PUT', `/kv/${segment(key)}`, { body: { value, ...options } });
  }
  get(key: string): Promise<KvEntry> {
    return this.http.request('GET', `/kv/${segment(key)}`);
  }
  async delete(key: string): Promise<void> {
    await this.http.request('DELETE', `/kv/${segment(key)}`);
  }
  /** `ttl: null` persists the key. */
  expire(key: string, ttl: number | null): Promise<KvSetResult> {
    return this.http.request('POST', `/kv/${segment(key)}/expire`, { body: { ttl } });
  }
  incr(key: string, by?: number): Promise<{ key: string; value: number }> {
    return this.http.request('POST', `/kv/${segment(key)}/incr`, { body: by === undefined ? {} : { by } });
  }
}

export class SessionsApi {
  constructor(private readonly http: Transport) {}
  create(session: CreateSession): Promise<Session> {
    return this.http.request('POST', '/sessions', { body: session });
  }
  get(id: string): Promise<Session> {
    return this.http.request('GET', `/sessions/${segment(id)}`);
  }
  keepAlive(id: string, ttl?: number): Promise<Session> {
    return this.http.request('POST', `/sessions/${segment(id)}/keepalive`, {
      body: ttl === undefined ? {} : { ttl },
    });
  }
  async end(id: string): Promise<void> {
    await this.http.request('DELETE', `/sessions/${segment(id)}`);
  }
  async find(by: { clusterId: string } | { correlationId: string }): Promise<Session[]> {
    const result = await this.http.request<{ sessions: Session[] }>('GET', '/sessions', { query: by });
    return result.sessions;
  }
  activeClusters(options: { limit?: number; cursor?: string } = {}): Promise<{
    clusters: string[];
    cursor?: string;
  }> {
    return this.http.request('GET', '/clusters/active', { query: options });
  }
  async isClusterActive(clusterId: string): Promise<boolean> {
    const result = await this.http.request<{ active: boolean }>(
      'GET',
      `/clusters/${segment(clusterId)}/active`,
    );
    return result.active;
  }
}

export class QueuesApi {
  constructor(private readonly http: Transport) {}
  /**
   * Enqueues `payload`. A `dedupId` is generated when none is given, so a send retried after a
   * 503 or 429 enqueues the message once.
   */
  async send(queue: string, payload: unknown, options: SendOptions = {}): Promise<{ id: string }> {
    const body = { payload, ...options, dedupId: options.dedupId ?? globalThis.crypto.randomUUID() };
    return this.http.request('POST', `/queues/${segment(queue)}/messages`, { body });
  }
  /** Leases up to `max` messages; with `wait` (seconds) the request waits for one to arrive. */
  async receive(queue: string, options: ReceiveOptions = {}, signal?: AbortSignal): Promise<QueueMessage[]> {
    const result = await this.http.request<{ messages: QueueMessage[] }>(
      'POST',
      `/queues/${segment(queue)}/receive`,
      { body: options, signal },
    );
    return result.messages;
  }
  async ack(queue: string, message: Pick<QueueMessage, 'id' | 'receipt'>): Promise<void> {
    await this.http.request('POST', `/queues/${segment(queue)}/messages/${segment(message.id)}/ack`, {
      body: { receipt: message.receipt },
    });
  }
  /** Gives the message back, to be delivered again after `delay` seconds. */
  async nack(queue: string, message: Pick<QueueMessage, 'id' | 'receipt'>, delay?: number): Promise<void> {
    await this.http.request('POST', `/queues/${segment(queue)}/messages/${segment(message.id)}/nack`, {
      body: { receipt: message.receipt, ...(delay === undefined ? {} : { delay }) },
    });
  }
  stats(queue: string): Promise<QueueStats> {
    return this.http.request('GET', `/queues/${segment(queue)}`);
  }
}

export class EventsApi {
  constructor(private readonly http: Transport) {}
  publish(channel: string, message: unknown): Promise<Published> {
    return this.http.request('POST', `/channels/${segment(channel)}/messages`, { body: { message } });
  }
  /** Events after `after` (exclusive), oldest first, at most `limit` (default 100). */
  async history(
    channel: string,
    options: { after?: string; limit?: number } = {},
    signal?: AbortSignal,
  ): Promise<ChannelEvent[]> {
    const result = await this.http.request<{ messages: ChannelEvent[] }>(
      'GET',
      `/channels/${segment(channel)}/messages`,
      { query: options, signal },
    );
    return result.messages;
  }
}

export class TokensApi {
  constructor(private readonly http: Transport) {}
  issue(token: IssueToken): Promise<IssuedToken> {
    return this.http.request('POST', '/tokens', { body: token });
  }
  async revoke(id: string): Promise<void> {
    await this.http.request('DELETE', `/tokens/${segment(id)}`);
  }
}
