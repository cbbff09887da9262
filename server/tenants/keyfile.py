"""The tenants file (``TTS_KEYS_FILE``): who may call the server, with which keys, models and limits.

YAML or JSON (by extension; ``.json`` is JSON, anything else YAML, which also reads JSON)::

    tenants:
      - name: voice-agent
        keys: ["sha256:9f86d081884c7d65..."]   # SHA-256 of each key, never the key itself
        models: ["hexgrad/Kokoro-82M"]         # omitted or ["*"]: every served model
        priority: interactive                  # interactive > standard (default) > batch
        admin: false                           # may read GET /v1/usage
        limits:                                # each optional; omitted means no limit
          requests_per_minute: 600
          chars_per_minute: 200000
          chars_per_day: 10000000
          concurrent_streams: 20

:func:`parse` validates the whole file or raises :class:`KeysFileError` naming what is wrong, so a
reload can keep the previous file in force. :func:`add_key` is ``tts-server keys add``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from server.tenants.tenant import PRIORITIES, Limits, Tenant

HASH_PREFIX = "sha256:"


class KeysFileError(ValueError):
    """The file cannot be used (unreadable, malformed, or invalid); the message says why."""


def hash_key(key: str) -> str:
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests_per_minute: int | None = Field(None, ge=1)
    chars_per_minute: int | None = Field(None, ge=1)
    chars_per_day: int | None = Field(None, ge=1)
    concurrent_streams: int | None = Field(None, ge=1)


class _Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    keys: list[str] = Field(min_length=1)
    models: list[str] = ["*"]
    priority: Literal["interactive", "standard", "batch"] = "standard"
    admin: bool = False
    limits: _Limits = _Limits()

    @field_validator("keys")
    @classmethod
    def _hashes(cls, keys: list[str]) -> list[str]:
        out = []
        for key in keys:
            digest = key.removeprefix(HASH_PREFIX).lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError("each key must be 'sha256:' and 64 hex digits (a SHA-256 hash, not the key itself)")
            out.append(HASH_PREFIX + digest)
        return out


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenants: list[_Tenant] = []


def read(path: Path) -> dict[str, Any]:
    """The file's raw content (an empty or missing ``tenants`` list is an empty file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeysFileError(f"cannot read it: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise KeysFileError(f"not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from None
    if data is None:
        return {"tenants": []}
    if not isinstance(data, dict):
        raise KeysFileError("the top level must be a mapping with a 'tenants' list")
    return data


def parse(data: dict[str, Any]) -> list[Tenant]:
    try:
        file = _File.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise KeysFileError(f"{where}: {first['msg']}") from None
    names: set[str] = set()
    owners: dict[str, str] = {}
    tenants = []
    for entry in file.tenants:
        if entry.name in names:
            raise KeysFileError(f"tenant name {entry.name!r} appears twice")
        names.add(entry.name)
        for digest in entry.keys:
            if digest in owners:
                raise KeysFileError(f"one key hash belongs to both {owners[digest]!r} and {entry.name!r}")
            owners[digest] = entry.name
        tenants.append(
            Tenant(
                name=entry.name,
                key_hashes=tuple(entry.keys),
                models=None if "*" in entry.models else frozenset(entry.models),
                priority=PRIORITIES[entry.priority],
                priority_name=entry.priority,
                admin=entry.admin,
                limits=Limits(**entry.limits.model_dump()),
            )
        )
    return tenants


def load(path: Path) -> list[Tenant]:
    return parse(read(path))


def add_key(path: Path, name: str) -> str:
    """Create a key for tenant ``name`` (a new tenant, allowed every model, if it is not in the file),
    write its hash into ``path`` and return the key: the only time it exists in clear."""
    data = read(path) if path.exists() else {"tenants": []}
    parse(data)  # refuse to extend a file the server would refuse
    key = "tts-" + secrets.token_urlsafe(32)
    tenants = data.setdefault("tenants", []) or []
    data["tenants"] = tenants
    entry = next((t for t in tenants if isinstance(t, dict) and t.get("name") == name), None)
    if entry is None:
        entry = {"name": name, "keys": []}
        tenants.append(entry)
    entry.setdefault("keys", []).append(hash_key(key))
    parse(data)  # the name itself must be valid
    as_json = path.suffix.lower() == ".json"
    text = json.dumps(data, indent=2) + "\n" if as_json else yaml.safe_dump(data, sort_keys=False)
    # Written whole and renamed into place: a server polling the file never reads half of it.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return key
