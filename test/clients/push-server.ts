/**
 * A WebSocket server speaking docs/api.md's queue push frames for one in-memory queue, so the
 * clients' receivers are tested on what the service cannot be made to do on demand: a connection
 * cut while it holds a delivery, an error frame for a stale receipt. Leases never end here; a
 * closed connection gives back what it held, as the contract says.
 */
import { randomUUID } from 'node:crypto';
import { type WebSocket, WebSocketServer } from 'ws';

interface Message {
  id: string;
  payload: unknown;
  attempts: number;
  enqueuedAt: string;
  /** The receipt of its current lease, and the connection holding it. */
  lease?: { receipt: string; holder: Consumer };
}

interface Consumer {
  socket: WebSocket;
  max: number;
}

export interface PushServer {
  url: string;
  /** Every frame the clients sent, parsed, in arrival order. */
  frames: Record<string, unknown>[];
  /** Refuse every `receive` with this error (e.g. `forbidden`), or accept them (undefined). */
  refuseReceive: { code: string; message: string } | undefined;
  /** Leave ack, nack and extend unanswered (a connection about to drop), or answer them (false). */
  silent: boolean;
  send(payload: unknown): string;
  /** Messages not yet acked, with their attempts. */
  remaining(): { id: string; attempts: number; leased: boolean }[];
  /** Cuts every open connection without a close handshake. */
  dropConnections(): void;
  /** Sends `frame` to every open connection, unasked. */
  broadcast(frame: object): void;
  close(): Promise<void>;
}

export async function startPushServer(queue: string): Promise<PushServer> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const messages: Message[] = [];
  const consumers: Consumer[] = [];
  const frames: Record<string, unknown>[] = [];

  const post = (socket: WebSocket, frame: object) => socket.send(JSON.stringify(frame));
  const held = (consumer: Consumer) => messages.filter((m) => m.lease?.holder === consumer).length;
  const pump = () => {
    for (const message of messages) {
      if (message.lease) continue;
      const consumer = consumers.find((c) => held(c) < c.max);
      if (!consumer) return;
      message.attempts++;
      message.lease = { receipt: randomUUID(), holder: consumer };
      const { id, payload, attempts, enqueuedAt } = message;
      post(consumer.socket, {
        type: 'delivery',
        queue,
        id,
        receipt: message.lease.receipt,
        payload,
        attempts,
        enqueuedAt,
      });
    }
  };
  const giveBack = (consumer: Consumer) => {
    for (const message of messages) if (message.lease?.holder === consumer) delete message.lease;
    consumers.splice(consumers.indexOf(consumer), 1);
    pump();
  };

  const pushServer: PushServer = {
    url: `ws://127.0.0.1:${address.port}`,
    frames,
    refuseReceive: undefined,
    silent: false,
    send(payload) {
      const id = randomUUID();
      messages.push({ id, payload, attempts: 0, enqueuedAt: new Date().toISOString() });
      pump();
      return id;
    },
    remaining: () => messages.map((m) => ({ id: m.id, attempts: m.attempts, leased: Boolean(m.lease) })),
    dropConnections() {
      for (const client of server.clients) client.terminate();
    },
    broadcast(frame) {
      for (const client of server.clients) post(client, frame);
    },
    close: () =>
      new Promise((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };

  server.on('connection', (socket) => {
    let consumer: Consumer | undefined;
    socket.on('close', () => {
      if (consumer) giveBack(consumer);
    });
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Record<string, unknown>;
      frames.push(frame);
      // As the service does: an error repeats the frame's queue, and its id when it has one.
      const echo = { queue: frame.queue, ...(frame.id === undefined ? {} : { id: frame.id }) };
      const error = (code: string, message: string) =>
        post(socket, { type: 'error', code, message, ...echo });
      if (frame.action === 'ping') return post(socket, { type: 'pong' });
      if (frame.queue !== queue) return error('forbidden', `not allowed on queue ${String(frame.queue)}`);
      if (frame.action === 'receive') {
        if (pushServer.refuseReceive) return post(socket, { type: 'error', ...pushServer.refuseReceive });
        consumer = { socket, max: typeof frame.max === 'number' ? frame.max : 1 };
        consumers.push(consumer);
        post(socket, { type: 'receiving', queue });
        return pump();
      }
      if (frame.action === 'stop') {
        if (consumer) giveBack(consumer);
        consumer = undefined;
        return post(socket, { type: 'stopped', queue });
      }
      if (pushServer.silent) return;
      const message = messages.find((m) => m.id === frame.id);
      if (!message || message.lease?.receipt !== frame.receipt) {
        return error('conflict', `receipt of ${String(frame.id)} is stale`);
      }
      if (frame.action === 'ack') {
        messages.splice(messages.indexOf(message), 1);
        post(socket, { type: 'acked', queue, id: message.id });
      } else if (frame.action === 'nack') {
        delete message.lease;
        post(socket, { type: 'nacked', queue, id: message.id });
      } else if (frame.action === 'extend') {
        post(socket, { type: 'extended', queue, id: message.id });
      } else return error('bad_request', `unknown action ${String(frame.action)}`);
      pump();
    });
  });
  return pushServer;
}
