// An agent: opens a session on a cluster, sends a command to the cluster's executor and follows
// the session's events until the command is done.
import type { StorageClient } from '../src/index.js';

export async function agent(client: StorageClient, clusterId: string, command: string): Promise<unknown[]> {
  const session = await client.sessions.create({ clusterId, userId: 'alice', ttl: 600 });
  const channel = `session-${session.sessionId}`;
  // Subscribed before the command is sent, so no event is missed.
  const events = client.subscribe(channel);
  const received: unknown[] = [];
  try {
    await events.ready;
    await client.queues.send(`commands-${clusterId}`, { sessionId: session.sessionId, command });
    for await (const event of events) {
      received.push(event.message);
      if ((event.message as { status?: string }).status === 'done') break;
    }
  } finally {
    events.close();
    await client.sessions.end(session.sessionId);
  }
  return received;
}
