import type { EventsApi } from './client.js';
import { FrameError, StorageError } from './errors.js';
import { Inbox } from './inbox.js';
import { openSocket, type ReconnectOptions, reconnect, type SocketContext } from './reconnect.js';
import type { ChannelEvent } from './types.js';
import type { WebSocketLike } from './websocket.js';

export interface SubscribeOptions extends ReconnectOptions {
  /** Deliver events after this id (read from history first); without it, events from now on. */
  after?: string;
}

interface SubscriptionContext extends SocketContext {
  events: EventsApi;
}

/** History is read in pages of this size (the API's largest). */
const HISTORY_PAGE = 1000;
/** Ids remembered to drop a frame relayed twice (a retried relay repeats within seconds). */
const SEEN_IDS = 10_000;

type ServerFrame =
  | { type: 'subscribed' | 'unsubscribed'; channel: string }
  | ({ type: 'message' } & ChannelEvent)
  | { type: 'error'; code: string; message: string }
  | { type: string };

/**
 * One channel followed over the WebSocket, as an async iterable of its events.
 *
 * Per connection: subscribe, and once `subscribed` arrives read history after the last id seen
 * (frames that arrive meanwhile wait), so nothing published while disconnected is missed; ids
 * already delivered are dropped, so nothing comes twice. A dropped connection is reopened with
 * back-off. `close()` (or breaking out of a `for await`) ends it.
 */
export class Subscription implements AsyncIterable<ChannelEvent> {
  /** The id of the last event delivered (or the `after` given). */
  lastId: string | undefined;
  /** Connections opened so far. */
  connections = 0;
  /**
   * Resolves once the subscription is following the channel (subscribed, position known):
   * everything published after that is delivered. Rejects if it never gets there.
   */
  readonly ready: Promise<void>;

  private readonly seen = new Set<string>();
  private readonly inbox = new Inbox<ChannelEvent>();
  private closed = false;
  private socket: WebSocketLike | undefined;
  private readonly stopped = new AbortController();
  /** False until the position to follow from is known: `after`, or the channel's newest id at the first subscribe. */
  private started: boolean;

  constructor(
    private readonly context: SubscriptionContext,
    readonly channel: string,
    private readonly options: SubscribeOptions,
  ) {
    this.lastId = options.after;
    this.started = options.after !== undefined;
    this.ready = this.inbox.ready;
    void this.run();
  }

  /** Opens connections until closed: each one resolves when its socket closes. */
  private async run(): Promise<void> {
    const error = await reconnect(() => this.connection(), {
      options: this.options,
      closed: () => this.closed,
      isFatal: (thrown) =>
        (thrown instanceof StorageError && thrown.status !== 503 && thrown.status !== 429) ||
        thrown instanceof FrameError,
      signal: this.stopped.signal,
      failing: `could not subscribe to ${this.channel}`,
    });
    if (error) {
      this.inbox.fail(error);
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox.end(new Error('subscription closed'));
    this.stopped.abort(new Error('subscription closed'));
    this.socket?.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<ChannelEvent> {
    return this.inbox.read(
      () => this.closed,
      () => this.close(),
    );
  }

  private deliver(event: ChannelEvent): void {
    if (this.seen.has(event.id)) return;
    if (this.options.after !== undefined && event.id <= this.options.after) return;
    this.seen.add(event.id);
    if (this.seen.size > SEEN_IDS) this.seen.delete(this.seen.values().next().value!);
    if (this.lastId === undefined || event.id > this.lastId) this.lastId = event.id;
    this.inbox.push(event);
  }

  /** One connection, until its socket closes; true when it got as far as `subscribed`. */
  private async connection(): Promise<boolean> {
    const socket = await openSocket(this.context);
    this.socket = socket;
    this.connections++;
    let subscribed = false;
    /** Live frames held back while history is read; undefined once live. */
    let held: ChannelEvent[] | undefined = [];
    let fatal: Error | undefined;

    /**
     * Reads history after the last id: delivered once started; before that (no `after`) only
     * read to find the newest id, so that a reconnect knows where to resume from.
     */
    const catchUp = async () => {
      held ??= [];
      try {
        for (;;) {
          const page = await this.context.events.history(
            this.channel,
            { ...(this.lastId === undefined ? {} : { after: this.lastId }), limit: HISTORY_PAGE },
            this.stopped.signal,
          );
          if (this.started) for (const event of page) this.deliver(event);
          else if (page.length > 0) this.lastId = page[page.length - 1]!.id;
          if (page.length < HISTORY_PAGE) break;
        }
        this.started = true;
        this.inbox.started();
        // Frames that arrived on this subscription are new even when history already had them.
        for (const event of held) this.deliver(event);
        held = undefined;
      } catch (error) {
        fatal = error as Error;
        socket.close();
      }
    };

    await new Promise<void>((resolve) => {
      socket.onopen = () => socket.send(JSON.stringify({ action: 'subscribe', channel: this.channel }));
      socket.onerror = () => {};
      socket.onclose = () => resolve();
      socket.onmessage = ({ data }) => {
        let frame: ServerFrame;
        try {
          frame = JSON.parse(String(data)) as ServerFrame;
        } catch {
          return;
        }
        if (frame.type === 'subscribed' && 'channel' in frame && frame.channel === this.channel) {
          subscribed = true;
          void catchUp();
        } else if (frame.type === 'message' && 'id' in frame && frame.channel === this.channel) {
          const { type: _type, ...event } = frame;
          if (held) held.push(event);
          else this.deliver(event);
        } else if (frame.type === 'error' && 'code' in frame) {
          // An event too large for a frame: read it from history instead.
          if (frame.code === 'payload_too_large' && subscribed) void catchUp();
          else if (!subscribed) {
            fatal = new FrameError(frame.code, frame.message);
            socket.close();
          }
        }
      };
    });
    if (this.socket === socket) this.socket = undefined;
    if (fatal) throw fatal;
    return subscribed;
  }
}
