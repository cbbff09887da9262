"""The realtime watchdog ends a connection even when its client stopped reading (the pump is stuck in a send)."""

import asyncio
import types

from server.realtime.connection import RealtimeConnection


class StalledSocket:
    """Accepts the first frame, then blocks every send as a paused transport does; the client never speaks."""

    def __init__(self) -> None:
        drain = types.SimpleNamespace(aborted=asyncio.Event())
        self.app = types.SimpleNamespace(state=types.SimpleNamespace(drain=drain))
        self.sent = 0
        self.closed = False

    async def send_text(self, text: str) -> None:
        self.sent += 1
        if self.sent > 1:
            await asyncio.Event().wait()

    async def receive(self) -> dict:
        await asyncio.Event().wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True


class RecordingSession:
    closed = False

    async def close(self) -> None:
        self.closed = True


async def test_idle_limit_ends_a_connection_whose_client_stopped_reading():
    settings = types.SimpleNamespace(realtime_max_session_s=3600, realtime_idle_timeout_s=0.3)
    ws = StalledSocket()
    connection = RealtimeConnection(ws, types.SimpleNamespace(settings=settings), None, None)
    connection._public = lambda: {}  # the session.created payload is not what this test is about
    session = RecordingSession()
    connection._open.append(types.SimpleNamespace(session=session, slot=None, status=None))

    async def stuck_pump() -> None:  # an audio delta that never leaves: it holds the send lock
        await connection.send({"type": "conversation.item.audio_output.delta"})
        await connection.send({"type": "conversation.item.audio_output.delta"})

    connection._pump = stuck_pump
    await asyncio.wait_for(connection.run(), 10)  # hung forever before the fix
    assert session.closed  # the item's synthesis was cancelled
