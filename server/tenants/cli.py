"""``tts-server keys add NAME [--file PATH]``: a new key for a tenant, printed once, its hash saved."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from server.tenants.keyfile import KeysFileError, add_key


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tts-server keys", description="Manage the tenants file's keys.")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="Create a key for tenant NAME (created if new) and print it once.")
    add.add_argument("name", help="The tenant's name (letters, digits, '.', '_', '-').")
    add.add_argument("--file", type=Path, default=None, help="The tenants file [default: $TTS_KEYS_FILE].")
    args = parser.parse_args(argv)
    path = args.file or (Path(os.environ["TTS_KEYS_FILE"]) if os.environ.get("TTS_KEYS_FILE") else None)
    if path is None:
        print("tts-server keys: give --file or set TTS_KEYS_FILE", file=sys.stderr)
        return 2
    try:
        key = add_key(path, args.name)
    except KeysFileError as exc:
        print(f"tts-server keys: {path}: {exc}", file=sys.stderr)
        return 1
    print(key)  # the only time the key exists in clear: the file holds its SHA-256
    print(
        f"Saved its hash for tenant {args.name!r} in {path}; a running server picks it up on SIGHUP or within "
        "TTS_KEYS_FILE_POLL_S seconds.",
        file=sys.stderr,
    )
    return 0
