import { FrameError } from './errors.js';
import { Inbox } from './inbox.js';
import { openSocket, type ReconnectOptions, reconnect, type SocketContext } from './reconnect.js';
import type { QueueMessage } from './types.js';
import type { WebSocketLike } from './websocket.js';

export interface PushReceiveOptions extends ReconnectOptions {
  /** Unacknowledged deliveries this connection may hold at a time, 1..100 (the API's default 1). */
  max?: number;
  /** Lease per delivery, seconds (the API's default 30). */
  visibilityTimeout?: number;
  /** A `ping` this often keeps an idle connection open (API Gateway closes one after 10 minutes idle); ms, default 300 000. */
  pingIntervalMs?: number;
}

/** Half API Gateway's 10-minute idle timeout. */
const PING_INTERVAL_MS = 300_000;

/** A leased message pushed over the WebSocket: an HTTP receive's message plus its queue. */
export type Delivery = QueueMessage & { queue: string };

type Reply = 'acked' | 'nacked' | 'extended';
type Settle = 'ack' | 'nack' | 'extend';
const REPLY: Record<Settle, Reply> = { ack: 'acked', nack: 'nacked', extend: 'extended' };

/** A frame the receiver sent and waits for the answer to. */
interface Pending {
  reply: Reply;
  id: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

type ServerFrame =
  | { type: 'receiving' | 'stopped'; queue: string }
  | ({ type: 'delivery' } & Delivery)
  | { type: Reply; queue: string; id: string }
  | { type: 'error'; code: string; message: string; queue?: string; id?: string }
  | { type: string };

/** An ack, nack or extend that the connection it was sent on did not answer before it closed. */
export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

/**
 * Leased messages of one queue pushed over the WebSocket (docs/api.md, Queue push delivery), as
 * an async iterable of deliveries; `ack`, `nack` and `extend` answer them over the same socket.
 *
 * Per connection: send `receive`, wait for `receiving`, then take deliveries; at most `max` are
 * unacknowledged at a time (the server holds the rest back). A dropped connection is reopened
 * with back-off and `receive` sent again. The server gives back what a closed connection held,
 * so deliveries received but not yet handed on are dropped then (they come again, on this or
 * another connection), and an ack in flight is rejected with `ConnectionClosedError`. `close()`
 * (or breaking out of a `for await`) sends `stop`, which gives back what is unacknowledged.
 */
export class PushReceiver implements AsyncIterable<Delivery> {
  /** Connections opened so far. */
  connections = 0;
  /** Resolves once the first `receiving` arrives; rejects if it never does (an error frame, closed). */
  readonly ready: Promise<void>;

  private readonly inbox = new Inbox<Delivery>();
  private readonly pending: Pending[] = [];
  private closed = false;
  /** The socket once `receiving` arrived on it; undefined while (re)connecting. */
  private live: WebSocketLike | undefined;
  private socket: WebSocketLike | undefined;
  private readonly stopped = new AbortController();

  constructor(
    private readonly context: SocketContext,
    readonly queue: string,
    private readonly options: PushReceiveOptions = {},
  ) {
    this.ready = this.inbox.ready;
    void this.run();
  }

  /** Opens connections until closed: each one resolves when its socket closes. */
  private async run(): Promise<void> {
    const error = await reconnect(() => this.connection(), {
      options: this.options,
      closed: () => this.closed,
      isFatal: (thrown) => thrown instanceof FrameError,
      signal: this.stopped.signal,
      failing: `could not receive from ${this.queue}`,
    });
    if (error) {
      this.inbox.fail(error);
      this.close();
    }
  }

  /** Acknowledges a delivery: the message is done. Resolves on `acked`. */
  ack(delivery: Pick<Delivery, 'id' | 'receipt'>): Promise<void> {
    return this.settle('ack', delivery, {});
  }

  /** Gives a delivery back, to be delivered again after `delay` seconds. Resolves on `nacked`. */
  nack(delivery: Pick<Delivery, 'id' | 'receipt'>, delay?: number): Promise<void> {
    return this.settle('nack', delivery, delay === undefined ? {} : { delay });
  }

  /** Extends a delivery's lease to `visibilityTimeout` seconds from now. Resolves on `extended`. */
  extend(delivery: Pick<Delivery, 'id' | 'receipt'>, visibilityTimeout: number): Promise<void> {
    return this.settle('extend', delivery, { visibilityTimeout });
  }

  /** Stops receiving: `stop` is sent (unacknowledged deliveries are given back) and the socket closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox.end(new Error('receiver closed'));
    this.stopped.abort(new Error('receiver closed'));
    const socket = this.socket;
    if (socket) {
      try {
        if (this.live === socket) socket.send(JSON.stringify({ action: 'stop', queue: this.queue }));
      } finally {
        socket.close();
      }
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Delivery> {
    return this.inbox.read(
      () => this.closed,
      () => this.close(),
    );
  }

  private settle(action: Settle, delivery: Pick<Delivery, 'id' | 'receipt'>, extra: object): Promise<void> {
    const socket = this.live;
    if (!socket) {
      return Promise.reject(
        new ConnectionClosedError(`${action} ${delivery.id}: not connected (the lease was given back)`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ reply: REPLY[action], id: delivery.id, resolve, reject });
      socket.send(
        JSON.stringify({ action, queue: this.queue, id: delivery.id, receipt: delivery.receipt, ...extra }),
      );
    });
  }

  /** One connection, until its socket closes; true when it got as far as `receiving`. */
  private async connection(): Promise<boolean> {
    const socket = await openSocket(this.context);
    this.socket = socket;
    this.connections++;
    if (this.closed) {
      socket.close();
      return false;
    }
    let receiving = false;
    let fatal: Error | undefined;
    const { max, visibilityTimeout } = this.options;
    const receive = {
      action: 'receive',
      queue: this.queue,
      ...(max === undefined ? {} : { max }),
      ...(visibilityTimeout === undefined ? {} : { visibilityTimeout }),
    };

    let pinger: ReturnType<typeof setInterval> | undefined;
    await new Promise<void>((resolve) => {
      socket.onopen = () => socket.send(JSON.stringify(receive));
      socket.onerror = () => {};
      socket.onclose = () => resolve();
      socket.onmessage = ({ data }) => {
        let frame: ServerFrame;
        try {
          frame = JSON.parse(String(data)) as ServerFrame;
        } catch {
          return;
        }
        if ('queue' in frame && frame.queue !== this.queue) return;
        if (frame.type === 'receiving') {
          receiving = true;
          this.live = socket;
          this.inbox.started();
          clearInterval(pinger);
          pinger = setInterval(
            () => socket.send(JSON.stringify({ action: 'ping' })),
            this.options.pingIntervalMs ?? PING_INTERVAL_MS,
          );
        } else if (frame.type === 'delivery' && 'receipt' in frame) {
          const { type: _type, ...delivery } = frame;
          this.inbox.push(delivery);
        } else if (frame.type === 'acked' || frame.type === 'nacked' || frame.type === 'extended') {
          const id = 'id' in frame ? frame.id : undefined;
          const at = this.pending.findIndex((p) => p.reply === frame.type && p.id === id);
          if (at >= 0) this.pending.splice(at, 1)[0]!.resolve();
        } else if (frame.type === 'error' && 'code' in frame) {
          const error = new FrameError(frame.code, frame.message);
          if (!receiving) {
            // The receive itself was refused (forbidden queue, bad options): nothing to retry.
            fatal = error;
            socket.close();
            return;
          }
          // Answers may arrive in any order: an error names the request it answers by id. One
          // without (from a server that does not say) is taken to answer the oldest request.
          const at = frame.id === undefined ? 0 : this.pending.findIndex((p) => p.id === frame.id);
          if (at >= 0) this.pending.splice(at, 1)[0]?.reject(error);
        }
      };
    });
    clearInterval(pinger);
    if (this.live === socket) this.live = undefined;
    if (this.socket === socket) this.socket = undefined;
    // The server gave back this connection's leases: what was not handed on comes again.
    this.inbox.clear();
    for (const request of this.pending.splice(0)) {
      request.reject(new ConnectionClosedError(`connection closed before ${request.reply} ${request.id}`));
    }
    if (fatal) throw fatal;
    return receiving;
  }
}
