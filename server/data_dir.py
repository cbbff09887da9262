"""Where the server keeps what must survive a restart (usage records, saved voices, compiled kernels).

``TTS_DATA_DIR`` when set; else ``$XDG_DATA_HOME/tts-server``; else ``~/.local/share/tts-server``
(the XDG default). Created on first use, not at import or settings time, so a server that stores
nothing never writes to disk.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "tts-server"


def data_path(configured: Path | None, *parts: str) -> Path:
    """Where ``parts`` live under the data directory, without creating anything (whoever stores there does)."""
    return (configured or default_data_dir()).expanduser().joinpath(*parts)


def voice_store(configured: Path | None, model_id: str) -> Path:
    """A model's saved voices (``POST /v1/voices``): ``<data dir>/voices/<org>--<model>``."""
    return data_path(configured, "voices", model_id.replace("/", "--"))


def data_dir(configured: Path | None, *parts: str) -> Path:
    """``configured`` (or the default) joined with ``parts``, created if missing."""
    path = (configured or default_data_dir()).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def use_compile_cache(configured: Path | None, data: Path | None) -> Path:
    """Point Inductor's on-disk cache at ``configured`` (else ``<data dir>/compile-cache``) for this process.

    Its default lives under /tmp, which a container or a reboot empties: every start would compile
    again (two minutes for Kokoro on a 2-core CPU, against ~25 s reading the cache). An operator's own
    ``TORCHINDUCTOR_CACHE_DIR`` wins. Set before anything compiles; returns the directory in use.
    """
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    path = (configured or data_path(data, "compile-cache")).expanduser()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    return path
