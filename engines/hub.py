"""Where weights come from: a local directory, or a Hugging Face repo at a pinned revision.

Weights are fetched at startup (``tts-server serve``) or ahead of time (``tts-server download``),
never while serving a request. When the Hub cannot be reached and nothing is cached, the error
says exactly how to get the files onto the machine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from engines.errors import ServiceUnavailable

logger = logging.getLogger(__name__)


class WeightsUnavailable(ServiceUnavailable):
    code = "weights_unavailable"


def is_local(source: str) -> bool:
    return source.startswith((".", "/", "~")) or Path(source).expanduser().is_dir()


def resolve_model_dir(
    source: str,
    *,
    revision: str | None,
    allow_patterns: Sequence[str],
    required: Sequence[str],
    cache_dir: Path | None = None,
    offline: bool = False,
    setting: str = "source",
) -> Path:
    """Return a local directory holding ``required`` files for ``source``.

    ``source`` is a local directory (used as is) or a Hub repo id (downloaded once into the HF
    cache at ``revision``; later starts use the cache without network when ``offline``).
    ``setting`` names the settings field, so errors can tell the operator what to change.
    """
    if is_local(source):
        path = Path(source).expanduser().resolve()
        missing = [f for f in required if not (path / f).exists()]
        if not path.is_dir() or missing:
            raise WeightsUnavailable(
                f"Local model directory {path} is missing {', '.join(missing) or 'everything'}. "
                f"It must have the Hugging Face repo's layout ({', '.join(required)})."
            )
        return path

    from huggingface_hub import snapshot_download

    try:
        path = Path(
            snapshot_download(
                source,
                revision=revision,
                allow_patterns=list(allow_patterns),
                cache_dir=str(cache_dir) if cache_dir else None,
                local_files_only=offline,
            )
        )
    except Exception as exc:  # huggingface_hub raises many types for "cannot get it"
        env = "TTS_" + setting.upper()
        raise WeightsUnavailable(
            f"Could not get '{source}' (revision {revision or 'main'}) from the Hugging Face Hub "
            f"or its local cache: {type(exc).__name__}: {exc}. On a machine with network, run "
            f"`tts-server download` (it fills the HF cache; copy that cache here and set HF_HOME), "
            f"or download the repo into a directory and start with --{setting.replace('_', '-')} "
            f"/path/to/dir (env {env})."
        ) from exc
    missing = [f for f in required if not (path / f).exists()]
    if missing:
        raise WeightsUnavailable(f"'{source}' at revision {revision} lacks {', '.join(missing)}.")
    logger.info("using %s@%s from %s", source, revision, path)
    return path
