"""The tenants file changes under a running server: SIGHUP and the poll pick it up; a broken file is refused."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.server.tenants.helpers import BODY, auth, write_tenants

REPO = Path(__file__).resolve().parents[3]

# The app with a stand-in engine, served by uvicorn in the main thread, as `tts-server serve` runs it.
SERVER = textwrap.dedent(
    """
    import logging, sys, uvicorn
    from server.app import create_app
    from server.settings import Settings
    from tests.support.fake_engine import FakeEngine

    logging.basicConfig(level=logging.INFO)  # as the CLI does
    engine = FakeEngine()
    settings = Settings(keys_file=sys.argv[1], keys_file_poll_s=0)  # SIGHUP only: no polling
    uvicorn.run(create_app(settings, engines={engine.model_id: engine}), host="127.0.0.1", port=int(sys.argv[2]))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _until(check, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _status(base: str, key: str) -> int:
    return httpx.post(f"{base}/v1/audio/speech", json=BODY, headers=auth(key), timeout=10).status_code


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX")
def test_sighup_admits_a_new_key_and_a_broken_file_keeps_the_old(tmp_path):
    path = tmp_path / "tenants.json"
    keys = write_tenants(path, {"first": {}})
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(path), str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert _until(lambda: _reachable(base), 60), "server did not start"
        assert _status(base, keys["first"]) == 200
        assert _status(base, "key-second") == 401
        keys = write_tenants(path, {"first": {}, "second": {}})
        assert _status(base, "key-second") == 401  # polling is off: nothing changes before the signal
        proc.send_signal(signal.SIGHUP)
        assert _until(lambda: _status(base, "key-second") == 200), "SIGHUP did not load the new key"
        path.write_text('{"tenants": [{"name": "x", "keys": ["not-a-hash"]}]}')
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert _status(base, keys["first"]) == 200 and _status(base, keys["second"]) == 200
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert "tenants file" in output and "rejected (SIGHUP)" in output and "tenants.0.keys" in output
    assert "keeping the 2 tenants already loaded" in output
    assert keys["first"] not in output and keys["second"] not in output


def _reachable(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_file_change_is_picked_up_by_the_poll(fake_server, tmp_path, caplog):
    path = tmp_path / "tenants.yaml"
    write_tenants(path, {"first": {}})  # JSON is YAML too
    with fake_server(keys_file=path, keys_file_poll_s=0.05) as (base, _):
        assert _status(base, "key-second") == 401
        write_tenants(path, {"first": {}, "second": {}})
        assert _until(lambda: _status(base, "key-second") == 200)
        with caplog.at_level(logging.ERROR, logger="server.tenants.registry"):
            path.write_text("tenants: [unclosed")
            assert _until(lambda: "rejected (file changed)" in caplog.text)
        assert "not valid YAML" in caplog.text
        assert _status(base, "key-first") == 200 and _status(base, "key-second") == 200


def test_open_stream_survives_a_reload_that_removes_its_key(fake_server, tmp_path):
    from tests.support.fake_engine import FakeEngine

    path = tmp_path / "tenants.json"
    write_tenants(path, {"first": {}})
    engine = FakeEngine(chunks=20, delay_s=0.05)
    with fake_server(engine=engine, keys_file=path, keys_file_poll_s=0.05) as (base, _):
        body = {**BODY, "stream": True, "response_format": "raw"}
        with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, headers=auth("key-first"), timeout=30) as r:
            write_tenants(path, {"other": {}})
            assert _until(lambda: _status(base, "key-first") == 401)
            data = r.read()
        assert r.status_code == 200 and b"[DONE]" in data
