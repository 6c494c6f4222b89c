"""An agent: opens a session on a cluster, sends a command to the cluster's executor and follows
the session's events until the command is done."""

from typing import Any, List

from kubently_storage_client import AsyncClient


async def agent(client: AsyncClient, cluster_id: str, command: str) -> List[Any]:
    session = await client.session_create(cluster_id, user_id="alice", ttl=600)
    channel = f"session-{session['sessionId']}"
    # Subscribed before the command is sent, so no event is missed.
    events = await client.subscribe(channel)
    received: List[Any] = []
    try:
        await client.queue_send(f"commands-{cluster_id}", {"sessionId": session["sessionId"], "command": command})
        async for event in events:
            received.append(event["message"])
            if event["message"].get("status") == "done":
                break
    finally:
        await events.close()
        await client.session_end(session["sessionId"])
    return received
