"""Run an app under a real uvicorn server on a loopback socket, in a background thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn


@contextlib.contextmanager
def serve_app(app, *, wait_ready: bool = True, timeout_s: float = 120.0) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = getattr(getattr(app, "state", None), "settings", None)  # ours; fakes of upstreams have none
    if settings is not None:  # the server's own HTTP limits, as `tts-server serve` runs them
        from server.http_limits import uvicorn_config

        config = uvicorn_config(app, settings, log_level="warning", lifespan="on")
    else:
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    if wait_ready:
        wait_until_ready(base, deadline)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_until_ready(base: str, deadline: float) -> None:
    while True:
        status = httpx.get(f"{base}/ready", timeout=5)
        if status.status_code == 200:
            return
        if status.json().get("status") == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"server not ready: {status.text}")
        time.sleep(0.1)
