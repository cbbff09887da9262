"""The tenants file's format, and `tts-server keys add`."""

from __future__ import annotations

import json

import pytest
import yaml

from server.cli import main
from server.tenants import PRIORITIES, TenantRegistry
from server.tenants.keyfile import KeysFileError, hash_key, load, parse


def test_yaml_example_parses(tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text(
        f"""
tenants:
  - name: voice-agent
    keys: ["{hash_key("k1")}"]
    models: ["hexgrad/Kokoro-82M"]
    priority: interactive
    limits: {{requests_per_minute: 600, chars_per_minute: 200000, chars_per_day: 10000000, concurrent_streams: 20}}
  - name: ops
    keys: ["{hash_key("k2")}"]
    admin: true
"""
    )
    agent, ops = load(path)
    assert agent.priority == PRIORITIES["interactive"] < PRIORITIES["standard"] < PRIORITIES["batch"]
    assert agent.may_use("hexgrad/Kokoro-82M") and not agent.may_use("canopylabs/orpheus-3b-0.1-ft")
    assert agent.limits.concurrent_streams == 20 and not agent.admin
    assert ops.admin and ops.may_use("anything") and ops.limits.requests_per_minute is None


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"tenants": [{"name": "a", "keys": ["plain"]}]}, "tenants.0.keys"),
        ({"tenants": [{"name": "a", "keys": [hash_key("x")], "priority": "urgent"}]}, "priority"),
        ({"tenants": [{"name": "a", "keys": [hash_key("x")], "limits": {"rpm": 3}}]}, "limits.rpm"),
        ({"tenants": [{"name": "a", "keys": [hash_key("x")]}, {"name": "a", "keys": [hash_key("y")]}]}, "twice"),
        ({"tenants": [{"name": "a", "keys": [hash_key("x")]}, {"name": "b", "keys": [hash_key("x")]}]}, "both"),
        ({"tenants": [{"name": "a b", "keys": [hash_key("x")]}]}, "name"),
    ],
)
def test_invalid_files_say_why(data, says):
    with pytest.raises(KeysFileError, match=says):
        parse(data)


def test_registry_matches_hashes_only(tmp_path):
    from types import SimpleNamespace

    from server.errors import AuthenticationFailed

    path = tmp_path / "t.json"
    path.write_text(json.dumps({"tenants": [{"name": "a", "keys": [hash_key("secret")]}]}))
    registry = TenantRegistry(SimpleNamespace(keys_file=path, keys_file_poll_s=0, api_keys=[]))
    assert registry.authenticate("secret").name == "a"
    assert registry.authenticate(" secret ").name == "a"
    with pytest.raises(AuthenticationFailed):
        registry.authenticate(hash_key("secret"))  # the hash itself is not a key
    assert "secret" not in path.read_text()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_keys_add_prints_a_key_once_and_stores_its_hash(tmp_path, capsys, suffix):
    path = tmp_path / f"tenants{suffix}"
    assert main(["keys", "add", "acme", "--file", str(path)]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["keys", "add", "acme", "--file", str(path)]) == 0
    second = capsys.readouterr().out.strip()
    assert first != second and len(first) > 30
    text = path.read_text()
    assert first not in text and second not in text
    data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    assert data["tenants"][0]["keys"] == [hash_key(first), hash_key(second)]
    (tenant,) = load(path)
    assert tenant.name == "acme" and tenant.models is None


def test_keys_add_refuses_a_broken_file(tmp_path, capsys):
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants: [{name: a, keys: [nope]}]")
    assert main(["keys", "add", "b", "--file", str(path)]) == 1
    assert "keys" in capsys.readouterr().err
    assert path.read_text() == "tenants: [{name: a, keys: [nope]}]"
