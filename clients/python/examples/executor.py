"""An executor: waits for commands on its cluster's queue, pushed over the WebSocket (no function
runs while it waits; long polls where the service does not push), runs each one and posts the
result to the command's session channel, until ``stop`` is set."""

import threading

from kubently_storage_client import Client, QueueMessage, run_executor


def executor(client: Client, cluster_id: str, stop: threading.Event) -> None:
    def handle(message: QueueMessage) -> None:
        session_id, command = message["payload"]["sessionId"], message["payload"]["command"]
        channel = f"session-{session_id}"
        client.publish(channel, {"status": "running", "command": command})
        output = f"ran {command} on {cluster_id}"  # run the command here
        client.publish(channel, {"status": "done", "command": command, "output": output})

    # Push, falling back to long polls of ``wait`` seconds.
    run_executor(client, f"commands-{cluster_id}", handle, stop, delivery="auto", wait=1)
