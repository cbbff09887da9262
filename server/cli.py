"""``tts-server serve`` and ``tts-server download``; every Settings field is also a flag."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from pydantic import ValidationError

from server.errors import APIError
from server.settings import Settings
from server.tenants.keyfile import KeysFileError

logger = logging.getLogger("tts-server")


# Secrets come from the environment only: a flag would put them in every `ps` listing.
SECRET_FIELDS = frozenset({"api_keys", "cartesia_api_key"})


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    for name, field in Settings.model_fields.items():
        if name in SECRET_FIELDS:
            continue
        flag = "--" + name.replace("_", "-")
        env = field.validation_alias if isinstance(field.validation_alias, str) else f"TTS_{name.upper()}"
        help_text = f"{field.description or ''} [env {env}]"
        if field.annotation is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None
    }
    return Settings(**overrides)


def _prefetch(settings: Settings) -> None:
    from engines import registry

    for name in settings.models:
        model_id, cls = registry.engine_class(name)
        for line in cls.prefetch(settings):
            logger.info("%s: %s", model_id, line)


def serve(settings: Settings) -> None:
    from server.app import create_app
    from server.http_limits import uvicorn_config
    from server.request_log import configure_request_logging
    from server.shutdown import GracefulServer

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    # Fetch or verify weights before binding the port: a missing model fails here, loudly.
    _prefetch(settings)
    configure_request_logging()
    app = create_app(settings)
    config = uvicorn_config(app, settings, host=settings.host, port=settings.port, log_level=settings.log_level)
    # SIGTERM drains (503 to new requests, grace period, final error events) before uvicorn's own exit.
    GracefulServer(config, app.state.drain).run()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark tool parses its own arguments
        from benchmarks.bench.cli import main as bench

        return bench(argv[1:])
    if argv[:1] == ["keys"]:  # tts-server keys add NAME: the tenants file (server/tenants/)
        from server.tenants.cli import main as keys

        return keys(argv[1:])
    parser = argparse.ArgumentParser(prog="tts-server", description="Together-compatible text-to-speech server.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bench", help="Latency and throughput of speech endpoints (`tts-server bench --help`).")
    sub.add_parser("keys", help="Add a tenant's key to the tenants file (`tts-server keys add --help`).")
    _add_settings_flags(sub.add_parser("serve", help="Start the HTTP server (default model: Kokoro)."))
    _add_settings_flags(sub.add_parser("download", help="Prefetch the configured models' weights."))
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        print(f"tts-server: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "download":
            _prefetch(settings)
        else:
            serve(settings)
    except APIError as exc:
        print(f"tts-server: {exc.message}", file=sys.stderr)
        return 1
    except KeysFileError as exc:  # TTS_KEYS_FILE unusable at startup
        print(f"tts-server: tenants file {settings.keys_file}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
