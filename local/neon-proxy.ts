/**
 * A WebSocket→TCP proxy speaking the protocol of Neon's `wsproxy`, so the Neon serverless
 * driver can reach a plain local Postgres: the driver opens `ws://HOST:PORT/v1?address=db:5432`
 * (config `postgresql.wsProxy: 'HOST:PORT/v1'`; a proxy on this machine is reached over plain ws://) and sends the
 * Postgres wire protocol as binary frames; the proxy opens a TCP connection to `address` and
 * pipes bytes both ways. No subprotocol, no TLS: for local development and tests only.
 *
 * Only targets in `allowedHosts` (default: this machine) are dialled, so it is not an open relay.
 *
 * Run directly: `npx tsx local/neon-proxy.ts [--port 4444]`.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { type WebSocket, WebSocketServer } from 'ws';

export interface NeonProxyOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Hosts the proxy may dial (default: 127.0.0.1, localhost, ::1); anything else is refused with 403. */
  allowedHosts?: string[];
}

export interface NeonProxy {
  port: number;
  /** The value for config `postgresql.wsProxy` (env `NEON_WS_PROXY`), e.g. `127.0.0.1:41234/v1`. */
  wsProxy: string;
  /** Stops listening and ends every open connection. */
  close(): Promise<void>;
}

/** Above this many bytes queued towards the WebSocket, reading from Postgres pauses. */
const HIGH_WATER_BYTES = 1024 * 1024;

/** `host:port` (or `[v6]:port`, or a bare v6 `::1:5432`) → its parts; undefined when malformed. */
function parseAddress(address: string): { host: string; port: number } | undefined {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const portText = address.slice(colon + 1);
  const port = Number(portText);
  if (host === '' || !/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

export async function startNeonProxy(options: NeonProxyOptions = {}): Promise<NeonProxy> {
  const { port = 0, host = '127.0.0.1', allowedHosts = ['127.0.0.1', 'localhost', '::1'] } = options;
  const allowed = new Set(allowedHosts.map((h) => h.toLowerCase()));
  const sockets = new Set<Socket>();

  const server = createServer((_request, response) => {
    response.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
    response.end('expected a WebSocket upgrade to /v1?address=host:port\n');
  });
  const wss = new WebSocketServer({ noServer: true });

  const refuse = (socket: import('node:stream').Duplex, status: number, reason: string) => {
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${
        Buffer.byteLength(reason) + 1
      }\r\n\r\n${reason}\n`,
    );
  };

  server.on('upgrade', (request: IncomingMessage, socket, head) => {
    socket.on('error', () => {});
    const url = new URL(request.url ?? '/', 'http://proxy');
    if (url.pathname !== '/v1') return refuse(socket, 404, 'Not Found');
    const target = parseAddress(url.searchParams.get('address') ?? '');
    if (target === undefined) return refuse(socket, 400, 'Bad Request');
    if (!allowed.has(target.host.toLowerCase())) return refuse(socket, 403, 'Forbidden');
    wss.handleUpgrade(request, socket, head, (ws) => pipe(ws, target.host, target.port));
  });

  /** Like Neon's wsproxy: upgrade first, then dial; a failed dial closes the WebSocket (code 1011). */
  const pipe = (ws: WebSocket, targetHost: string, targetPort: number) => {
    const tcp = connect({ host: targetHost, port: targetPort });
    sockets.add(tcp);
    tcp.setNoDelay(true);
    let done = false;
    /** Ends both sides once; `flush`: let bytes already written to TCP reach it (the client said goodbye). */
    const finish = (error?: Error, flush = false) => {
      if (done) return;
      done = true;
      if (flush) {
        tcp.end();
        setTimeout(() => tcp.destroy(), 1000).unref();
      } else {
        tcp.destroy();
      }
      if (ws.readyState === ws.OPEN) {
        // 1011: the target failed; 1000: it closed. Close reasons are capped at 123 bytes.
        ws.close(error ? 1011 : 1000, (error?.message ?? 'TCP connection is closed').slice(0, 120));
        // A peer that never answers the close handshake is dropped.
        setTimeout(() => ws.terminate(), 1000).unref();
      } else if (ws.readyState !== ws.CLOSED) {
        ws.terminate();
      }
    };

    // Postgres → client. Pause reading while the WebSocket has much unsent; its send callbacks resume.
    tcp.on('data', (chunk: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(chunk, { binary: true }, () => {
        if (tcp.isPaused() && ws.bufferedAmount < HIGH_WATER_BYTES / 2) tcp.resume();
      });
      if (ws.bufferedAmount >= HIGH_WATER_BYTES) tcp.pause();
    });
    // Client → Postgres. Frames written before the TCP connection is up are queued by the socket, in order.
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const chunk = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      if (!tcp.write(chunk)) ws.pause();
    });
    tcp.on('drain', () => ws.resume());

    tcp.on('end', () => finish());
    tcp.on('error', (error) => finish(error));
    tcp.on('close', () => {
      sockets.delete(tcp);
      finish();
    });
    ws.on('close', () => finish(undefined, true));
    ws.on('error', () => finish());
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const actualPort = typeof address === 'object' && address !== null ? address.port : port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;

  return {
    port: actualPort,
    wsProxy: `${hostForUrl}:${actualPort}/v1`,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      for (const tcp of sockets) tcp.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function optionValue(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index >= 0) return args[index + 1];
  return args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const port = Number(optionValue(process.argv.slice(2), '--port') ?? 4444);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port: expected a port number, got ${optionValue(process.argv.slice(2), '--port')}`);
    process.exit(2);
  }
  const proxy = await startNeonProxy({ port });
  console.log(
    `Neon WebSocket proxy on ws://${proxy.wsProxy} — use it with POSTGRES_DRIVER=neon NEON_WS_PROXY=${proxy.wsProxy} DATABASE_URL=postgres://postgres@127.0.0.1:5432/test`,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void proxy.close().then(() => process.exit(0));
    });
  }
}
