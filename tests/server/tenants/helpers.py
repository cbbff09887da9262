"""A tenants file for tests: keys in clear for the client, their hashes in the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from server.tenants.keyfile import hash_key

MODEL = "hexgrad/Kokoro-82M"
BODY = {"model": MODEL, "input": "Hello there.", "voice": "alpha"}


def write_tenants(path: Path, tenants: dict[str, dict[str, Any]]) -> dict[str, str]:
    """``{name: options}`` -> the file at ``path``; returns ``{name: key}`` (each key is ``key-<name>``)."""
    entries = [{"name": name, "keys": [hash_key(f"key-{name}")], **options} for name, options in tenants.items()]
    path.write_text(json.dumps({"tenants": entries}))
    return {name: f"key-{name}" for name in tenants}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
