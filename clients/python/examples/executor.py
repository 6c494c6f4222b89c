"""An executor: waits for commands on its cluster's queue, runs each one and posts the result
to the command's session channel, until ``stop`` is set."""

import threading

from kubently_storage_client import Client, QueueMessage, run_executor


def executor(client: Client, cluster_id: str, stop: threading.Event) -> None:
    def handle(message: QueueMessage) -> None:
        session_id, command = message["payload"]["sessionId"], message["payload"]["command"]
        channel = f"session-{session_id}"
        client.publish(channel, {"status": "running", "command": command})
        output = f"ran {command} on {cluster_id}"  # run the command here
        client.publish(channel, {"status": "done", "command": command, "output": output})

    run_executor(client, f"commands-{cluster_id}", handle, stop, wait=1)
