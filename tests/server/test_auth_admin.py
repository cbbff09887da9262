"""What routes get from authentication: ``state.tenant`` on every request and websocket, and
``require_admin`` for HTTP and websockets alike (open server, plain keys, tenants file)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from fastapi import Depends, Request, WebSocket
from websockets.exceptions import InvalidStatus

from server.app import create_app
from server.auth import require_admin, require_api_key
from server.settings import Settings
from tests.server.tenants.helpers import auth, write_tenants
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app


def app_with_probes(**settings):
    engine = FakeEngine()
    app = create_app(Settings(**settings), engines={engine.model_id: engine})

    async def whoami(request: Request) -> dict:
        tenant = request.state.tenant
        return {"name": tenant.name, "admin": tenant.admin, "priority": tenant.priority}

    async def admin_only() -> dict:
        return {"ok": True}

    async def admin_socket(websocket: WebSocket) -> None:
        require_api_key(websocket)
        require_admin(websocket)
        await websocket.accept()
        await websocket.send_text(websocket.state.tenant.name)
        await websocket.close()

    app.add_api_route("/v1/test/whoami", whoami)
    app.add_api_route("/v1/test/admin", admin_only, dependencies=[Depends(require_admin)])
    app.add_api_websocket_route("/v1/test/admin-socket", admin_socket)
    return app


async def socket_says(base: str, key: str | None) -> str:
    headers = auth(key) if key else {}
    async with websockets.connect(
        base.replace("http", "ws") + "/v1/test/admin-socket", additional_headers=headers
    ) as ws:
        return await ws.recv()


def test_tenants_file(tmp_path):
    path = tmp_path / "t.json"
    keys = write_tenants(path, {"agent": {"priority": "interactive"}, "ops": {"admin": True}})
    with serve_app(app_with_probes(keys_file=path, api_keys="plain")) as base:
        me = httpx.get(f"{base}/v1/test/whoami", headers=auth(keys["agent"])).json()
        assert me == {"name": "agent", "admin": False, "priority": -1}
        assert httpx.get(f"{base}/v1/test/whoami", headers=auth("plain")).json()["name"] == "default"
        r = httpx.get(f"{base}/v1/test/admin", headers=auth(keys["agent"]))
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
        assert httpx.get(f"{base}/v1/test/admin", headers=auth("plain")).status_code == 403
        assert httpx.get(f"{base}/v1/test/admin", headers=auth(keys["ops"])).json() == {"ok": True}
        assert asyncio.run(socket_says(base, keys["ops"])) == "ops"
        with pytest.raises(InvalidStatus) as caught:
            asyncio.run(socket_says(base, keys["agent"]))
        assert caught.value.response.status_code == 403


@pytest.mark.parametrize("keys", ["", "plain"])
def test_without_a_tenants_file_every_caller_is_an_unlimited_admin(keys):
    with serve_app(app_with_probes(api_keys=keys)) as base:
        headers = auth("plain") if keys else {}
        me = httpx.get(f"{base}/v1/test/whoami", headers=headers).json()
        assert me == {"name": "default", "admin": True, "priority": 0}
        assert httpx.get(f"{base}/v1/test/admin", headers=headers).status_code == 200
        assert asyncio.run(socket_says(base, "plain" if keys else None)) == "default"
