"""A websocket server that answers a Realtime client with recorded Phoenix frames.

Realtime cannot run here; this replays what it sends (realtime_frames.json): the join reply
for the client's postgres_changes binding, the subscription notice, heartbeat replies,
and, when a test asks, an INSERT of a wowlab_wakeups row. The client under test is the
real supabase-py Realtime client."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

FRAMES = json.loads(Path(__file__).with_name("realtime_frames.json").read_text())


def frame(name: str, **values: Any) -> dict[str, Any]:
    """A recorded frame with its {placeholders} filled in."""
    text = json.dumps(FRAMES[name])
    for key, value in values.items():
        text = text.replace(f'"{{{key}}}"', json.dumps(value))
    return json.loads(text)


class RealtimeReplay:
    """Serves on 127.0.0.1 in a thread; ``push_insert(row)`` sends a recorded INSERT."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.requests: list[str] = []
        self.joined = threading.Event()
        self._subscribers: list[tuple[ServerConnection, str]] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/realtime/v1"

    def start(self) -> RealtimeReplay:
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = self.loop.create_future()
        async with serve(self._handle, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop

    async def _handle(self, ws: ServerConnection) -> None:
        self.requests.append(ws.request.path if ws.request else "")
        async for raw in ws:
            message = json.loads(raw)
            event, topic, ref = message.get("event"), message.get("topic"), message.get("ref")
            if event == "phx_join":
                binding = message["payload"]["config"]["postgres_changes"][0]
                await ws.send(
                    json.dumps(frame("join_reply", topic=topic, ref=ref, filter=binding["filter"]))
                )
                await ws.send(json.dumps(frame("subscribed", topic=topic)))
                self._subscribers.append((ws, topic))
                self.joined.set()
            elif event == "heartbeat":
                await ws.send(json.dumps(frame("heartbeat_reply", ref=ref)))

    def push_insert(self, row_id: int, wake_topic: str) -> None:
        """Send every subscriber the recorded INSERT of a wake-up row."""

        async def send() -> None:
            for ws, topic in list(self._subscribers):
                payload = frame("insert", topic=topic, id=row_id, wake_topic=wake_topic)
                await ws.send(json.dumps(payload))

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(5)

    def close(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(5)
