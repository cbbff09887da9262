"""``tts-server serve``, ``download`` and ``config``; every setting but a secret is also a flag
(server/settings_layout.py names them)."""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from server import settings_doc, settings_layout
from server.errors import APIError
from server.settings import Settings
from server.tenants.keyfile import KeysFileError

logger = logging.getLogger("tts-server")

#: Entry points of this group are subcommands that parse their own arguments (``tts-server bench``,
#: declared by the benchmarks package in pyproject.toml): the server never imports them itself.
COMMANDS_GROUP = "tts_server.commands"


def _add_flag(parser: Any, dest: str, flag: str, info: FieldInfo, env: str, inherits: str | None = None) -> None:
    default = f"; unset: --{inherits.replace('_', '-')}" if inherits else ""
    help_text = f"{info.description or ''} [env {env}{default}]"
    if info.annotation is bool:
        parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
    else:
        parser.add_argument(flag, dest=dest, default=None, metavar=dest.upper(), help=help_text)


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """A flag for every setting except secrets (env only: a flag would show in every `ps` listing)."""
    secrets = settings_doc.secret_flat_fields()
    for name, info in settings_doc.flat_fields().items():
        if name not in secrets:
            _add_flag(parser, name, "--" + name.replace("_", "-"), info, f"TTS_{name.upper()}")
    for section, cls in settings_layout.sections():
        group = parser.add_argument_group(
            f"{section} settings", f"settings.{section}; each flag beats its env, which beats the flat default"
        )
        for field in settings_layout.section_fields(section, cls):
            if not field.secret:
                env = " or ".join(field.env_names)
                _add_flag(group, field.keyword, field.flag, field.info, env, field.inherits)


def settings_from_args(args: argparse.Namespace) -> Settings:
    names = [*settings_doc.flat_fields(), *(f.keyword for f in settings_layout.all_section_fields())]
    overrides: dict[str, Any] = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return Settings(**overrides)


def _plugin_command(name: str) -> Any | None:
    """The ``main(argv)`` an installed package registers as subcommand ``name``, if any."""
    for entry in entry_points(group=COMMANDS_GROUP):
        if entry.name == name:
            try:
                return entry.load()
            except ImportError:  # declared by this project, but its package left out (the Docker image)
                return None
    return None


def _prefetch(settings: Settings) -> None:
    from engines import registry

    for name in settings.models:
        model_id, cls = registry.engine_class(name)
        for line in cls.prefetch(settings.section(name)):
            logger.info("%s: %s", model_id, line)


def serve(settings: Settings) -> None:
    from server.app import create_app
    from server.data_dir import use_compile_cache
    from server.http_limits import uvicorn_config
    from server.request_log import configure_request_logging
    from server.shutdown import GracefulServer

    logger.info("compiled kernels cached in %s", use_compile_cache(settings.compile_cache_dir, settings.data_dir))
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
        bench = _plugin_command("bench")
        if bench is None:
            print("tts-server: `bench` comes with the benchmarks package, which is not installed", file=sys.stderr)
            return 2
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
    config = sub.add_parser("config", help="Print the effective settings as JSON (secrets masked).")
    config.add_argument("--markdown", action="store_true", help="Print the README's settings table instead.")
    _add_settings_flags(config)
    args = parser.parse_args(argv)
    if args.command == "config" and args.markdown:
        print(settings_doc.markdown_table(), end="")
        return 0
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        print(f"tts-server: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "config":
        print(settings_doc.effective_json(settings))
        return 0
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
