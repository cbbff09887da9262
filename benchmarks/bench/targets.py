"""What to benchmark: a base URL speaking ``/v1/audio/speech``, its key, model, voice and output options.

Two dialects share the path:

* ``together``: ``response_format`` raw|wav|mp3, ``response_encoding``, ``sample_rate``,
  ``stream: true`` for SSE (``audio.tts.chunk`` events with ``b64``), or the realtime websocket;
* ``openai``: ``response_format`` mp3|opus|aac|flac|wav|pcm, ``stream_format: "sse"``
  (``speech.audio.delta`` events with ``audio``) or ``"audio"`` (the container bytes, streamed).

``stream`` is ``sse``, ``bytes`` (the body read as it arrives; OpenAI sends ``stream_format:
"audio"``), ``off`` (a plain request; the body is still timed as it arrives) or ``ws`` (Together's
realtime websocket, raw 24 kHz pcm_s16le). Keys never go on the command line: a target names the
environment variable holding its key (``key_env``), or a targets file (JSON) carries ``key``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.bench.audio import AudioSpec

STREAM_MODES = ("sse", "bytes", "off", "ws")
FORMATS = {"together": ("raw", "wav", "mp3"), "openai": ("mp3", "opus", "aac", "flac", "wav", "pcm")}
DEFAULT_KEY_ENV = "TTS_BENCH_API_KEY"


@dataclass(frozen=True)
class Target:
    url: str
    model: str = "hexgrad/Kokoro-82M"
    voice: str = "af_heart"
    api: str = "together"  # together | openai
    format: str = "raw"
    encoding: str = "pcm_s16le"  # raw (Together) only
    sample_rate: int = 24000
    stream: str = "sse"
    name: str = ""
    key_env: str = DEFAULT_KEY_ENV
    key: str | None = field(default=None, repr=False)  # from a targets file only; never written out
    extra: dict[str, Any] = field(default_factory=dict)  # merged into every request body

    def __post_init__(self) -> None:
        if self.api not in FORMATS:
            raise ValueError(f"target {self.url}: api must be together or openai, not {self.api!r}")
        if self.format not in FORMATS[self.api]:
            raise ValueError(f"target {self.url}: format {self.format!r} is not one of {FORMATS[self.api]}")
        if self.stream not in STREAM_MODES:
            raise ValueError(f"target {self.url}: stream must be one of {STREAM_MODES}, not {self.stream!r}")
        if self.api == "together" and self.stream == "sse" and self.format != "raw":
            raise ValueError(f"target {self.url}: Together streams (SSE) only raw audio; use format=raw")
        if self.stream == "ws" and self.api != "together":
            raise ValueError(f"target {self.url}: the realtime websocket is Together's (api=together)")
        if not self.name:
            host = urlsplit(self.url).netloc or self.url
            object.__setattr__(self, "name", f"{host} {self.model.rsplit('/', 1)[-1]}")

    @property
    def base(self) -> str:
        """The server root: a trailing ``/v1`` (as SDKs are configured) is dropped."""
        url = self.url.rstrip("/")
        return url[:-3] if url.endswith("/v1") else url

    def api_key(self) -> str | None:
        return self.key or os.environ.get(self.key_env) or None

    def headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    @property
    def audio(self) -> AudioSpec:
        """How to decode the audio bytes this target returns."""
        if self.stream == "ws":
            return AudioSpec("raw", "pcm_s16le", 24000)
        if self.api == "openai" and self.format == "pcm":
            return AudioSpec("pcm", "pcm_s16le", 24000)
        return AudioSpec(self.format, self.encoding, self.sample_rate)

    def body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": text, "voice": self.voice}
        body["response_format"] = self.format
        if self.api == "together":
            if self.format == "raw":
                body["response_encoding"] = self.encoding
            body["sample_rate"] = self.sample_rate
            body["stream"] = self.stream == "sse"
        elif self.stream in ("sse", "bytes"):
            body["stream_format"] = "sse" if self.stream == "sse" else "audio"
        return {**body, **self.extra}

    def public(self) -> dict[str, Any]:
        """For reports: everything but the key."""
        out = asdict(self)
        out.pop("key")
        out["has_key"] = self.api_key() is not None
        return out


def parse_target(spec: str, defaults: Target) -> Target:
    """``url=http://host:8000,model=...,voice=...,api=openai,format=mp3,stream=bytes,name=...`` (or a bare URL)."""
    if "=" not in spec:
        return replace(defaults, url=spec, name="")
    fields: dict[str, Any] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--target: cannot read {part!r} in {spec!r} (want key=value pairs)")
        if key in ("rate", "sample_rate"):
            fields["sample_rate"] = int(value)
        elif key == "key":
            raise ValueError("--target: keys do not go on the command line; use key_env=VAR or a targets file")
        elif key in Target.__dataclass_fields__:
            fields[key] = value.strip()
        else:
            raise ValueError(f"--target: unknown field {key!r}")
    if "url" not in fields:
        raise ValueError(f"--target {spec!r}: url= is required")
    return _with_api_defaults(defaults, fields)


def _with_api_defaults(defaults: Target, fields: dict[str, Any]) -> Target:
    """A target that switches dialect gets that dialect's default format when none was given."""
    if fields.get("api") == "openai" and defaults.api != "openai" and "format" not in fields:
        fields["format"] = "pcm" if fields.get("stream", defaults.stream) in ("sse", "bytes") else "mp3"
    return replace(defaults, **{"name": "", **fields})


def load_targets_file(path: str, defaults: Target) -> list[Target]:
    """A JSON list of target objects (the same fields; ``key`` allowed here)."""
    entries = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    if isinstance(entries, dict):
        entries = entries.get("targets", [])
    targets = []
    for entry in entries:
        entry = {k.replace("-", "_"): v for k, v in entry.items()}
        if "rate" in entry:
            entry["sample_rate"] = entry.pop("rate")
        targets.append(_with_api_defaults(defaults, entry))
    return targets
