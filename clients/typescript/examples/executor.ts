// An executor: waits for commands on its cluster's queue, pushed over the WebSocket (no function
// runs while it waits; long polls where the service does not push), runs each one and posts the
// result to the command's session channel, until `signal` aborts.
import { runExecutor, type StorageClient } from '../src/index.js';

export interface Command {
  sessionId: string;
  command: string;
}

export async function executor(client: StorageClient, clusterId: string, signal: AbortSignal): Promise<void> {
  await runExecutor({
    client,
    queue: `commands-${clusterId}`,
    signal,
    delivery: 'auto', // push, falling back to long polls of `wait` seconds
    wait: 20,
    handler: async (message) => {
      const { sessionId, command } = message.payload as Command;
      const channel = `session-${sessionId}`;
      await client.events.publish(channel, { status: 'running', command });
      const output = `ran ${command} on ${clusterId}`; // run the command here
      await client.events.publish(channel, { status: 'done', command, output });
    },
    onError: (error) => console.error('command failed', error),
  });
}
