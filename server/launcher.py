"""Run ``tts-server serve`` as a child process (for benchmarks, end-to-end tests and scripts)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx


@contextlib.contextmanager
def launch_server(*args: str, env: dict[str, str] | None = None, timeout_s: float = 180.0) -> Iterator[str]:
    """Start ``tts-server serve *args`` as its own process on a free loopback port.

    Yields the base URL once ``/ready`` answers 200; stops the process on exit. Used by the
    end-to-end tests and ``benchmarks/`` to run the server exactly as a user would.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cmd = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"tts-server exited {proc.returncode}:\n{log.read().decode()[-4000:]}")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("tts-server did not become ready")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
