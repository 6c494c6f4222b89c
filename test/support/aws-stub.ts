/**
 * A local HTTP server standing in for API Gateway's management API (`POST` and
 * `DELETE /@connections/{id}`) and Lambda's Invoke API, which the real AWS SDK clients talk to
 * through `WEBSOCKET_ENDPOINT` / `LAMBDA_ENDPOINT` (`relayEnv`).
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Invocation {
  functionName: string;
  invocationType: string | undefined;
  payload: unknown;
}

export interface AwsStub {
  /** `http://127.0.0.1:<port>`: both endpoints. */
  url: string;
  /** Frames posted per connection id, parsed, in arrival order. */
  frames: Map<string, unknown[]>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read whatever frame arrived.
  framesFor(connectionId: string): any[];
  /** Connection ids answered 410 Gone, as API Gateway answers for closed connections. */
  gone: Set<string>;
  /** Connection ids closed with `DELETE /@connections/{id}`, in order; each is gone from then on. */
  closed: string[];
  /** Connection ids answered 500, as a failing API Gateway would. */
  failing: Set<string>;
  invocations: Invocation[];
  /** Answer Invoke with this status (default 202). */
  invokeStatus: number;
  /** Requests the stub did not recognise (should stay empty). */
  unexpected: string[];
  reset(): void;
  close(): Promise<void>;
}

export async function startAwsStub(): Promise<AwsStub> {
  const stub = {
    frames: new Map<string, unknown[]>(),
    gone: new Set<string>(),
    closed: [] as string[],
    failing: new Set<string>(),
    invocations: [] as Invocation[],
    invokeStatus: 202,
    unexpected: [] as string[],
  };
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://stub').pathname);
    const post = /^(?:\/[^/@]+)?\/@connections\/(.+)$/.exec(path);
    if (request.method === 'DELETE' && post) {
      const connectionId = post[1]!;
      const known = !stub.gone.has(connectionId);
      stub.gone.add(connectionId);
      if (known) stub.closed.push(connectionId);
      response.writeHead(known ? 204 : 410);
      response.end();
      return;
    }
    if (request.method === 'POST' && post) {
      const connectionId = post[1]!;
      if (stub.gone.has(connectionId)) {
        response.writeHead(410, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ message: 'Gone' }));
        return;
      }
      if (stub.failing.has(connectionId)) {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ message: 'Internal server error' }));
        return;
      }
      const list = stub.frames.get(connectionId) ?? [];
      list.push(JSON.parse(body.toString('utf8')));
      stub.frames.set(connectionId, list);
      response.writeHead(200);
      response.end();
      return;
    }
    const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(path);
    if (request.method === 'POST' && invoke) {
      stub.invocations.push({
        functionName: invoke[1]!,
        invocationType: request.headers['x-amz-invocation-type'] as string | undefined,
        payload: JSON.parse(body.toString('utf8')),
      });
      response.writeHead(stub.invokeStatus, { 'content-type': 'application/json' });
      response.end(
        stub.invokeStatus < 300 ? '' : JSON.stringify({ Type: 'Service', message: 'stub failure' }),
      );
      return;
    }
    stub.unexpected.push(`${request.method} ${path}`);
    response.writeHead(404);
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(stub, {
    url: `http://127.0.0.1:${port}`,
    framesFor: (connectionId: string) => (stub.frames.get(connectionId) ?? []) as never[],
    reset() {
      stub.frames.clear();
      stub.gone.clear();
      stub.closed.length = 0;
      stub.failing.clear();
      stub.invocations.length = 0;
      stub.invokeStatus = 202;
      stub.unexpected.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The environment the relay's SDK clients need: dummy credentials and the stub's endpoints. */
export function relayEnv(stub: AwsStub): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    WEBSOCKET_ENDPOINT: stub.url,
    LAMBDA_ENDPOINT: stub.url,
  };
}
