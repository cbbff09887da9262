"""Kokoro voicepack files: read, check, describe and write ``[510, 1, 256]`` style tensors.

A voicepack is one float tensor with a style row per input length (510 phonemes, 256 style
values); Kokoro's own voices are such files, and so are the packs the community trains and shares.
Files come as ``*.pt`` (``torch.save`` of the tensor) or ``*.safetensors`` (one tensor), named
after the voice, with an optional sidecar ``<name>.json`` (``language``, ``gender``,
``description``). A file that is not such a tensor is refused here with a message naming it;
callers decide whether that is a log line (a directory scan) or a 400 (an upload).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voices import load_catalog

logger = logging.getLogger(__name__)

SHAPE = (510, 1, 256)
SUFFIXES = (".pt", ".safetensors")
#: A voice name: usable inside a mix (``name(2)+other``), as a file name, and in a URL path.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
#: Kokoro's naming convention: language letter, gender letter, underscore (``bf_emma``).
_PREFIX = re.compile(r"^([abefhijpz])([fm])_")
_GENDERS = {"f": "female", "m": "male"}


class BadVoicepack(ValueError):
    """A file or tensor that is not a Kokoro voicepack; the message says what is wrong with it."""


@dataclass(frozen=True)
class VoiceMeta:
    """What the listing shows about a voice, and the G2P accent it speaks English with."""

    lang_code: str  # Kokoro's language letter: "a" American English, "b" British, "e" Spanish...
    language: str | None = None  # a locale, e.g. en-GB
    gender: str | None = None
    description: str | None = None
    source: str | None = None  # a saved mix: the spec it was blended from

    def as_json(self) -> dict[str, str]:
        fields = ("language", "gender", "description", "source")
        return {k: getattr(self, k) for k in fields if getattr(self, k) is not None}


def _locales() -> dict[str, str]:
    """Kokoro language letter -> the locale its catalog voices list (a -> en-US, b -> en-GB...)."""
    return {v["lang_code"]: v["language"] for v in load_catalog("kokoro")["voices"]}


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise BadVoicepack(
            f"Invalid voice name {name!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit."
        )
    return name


def check_tensor(value: Any, origin: str) -> torch.Tensor:
    """``value`` as a float32 CPU tensor of :data:`SHAPE`, or :class:`BadVoicepack` naming ``origin``."""
    if not isinstance(value, torch.Tensor):
        raise BadVoicepack(f"{origin}: expected a tensor of shape {list(SHAPE)}, found {type(value).__name__}.")
    if not value.is_floating_point():
        raise BadVoicepack(f"{origin}: expected a floating-point tensor, found dtype {value.dtype}.")
    if tuple(value.shape) != SHAPE:
        # Some packs drop the middle axis ([510, 256]); that is the same data.
        if tuple(value.shape) == (SHAPE[0], SHAPE[2]):
            value = value.unsqueeze(1)
        else:
            raise BadVoicepack(f"{origin}: expected shape {list(SHAPE)}, found {list(value.shape)}.")
    value = value.detach().to("cpu", torch.float32).contiguous()
    if not torch.isfinite(value).all():
        raise BadVoicepack(f"{origin}: the tensor holds NaN or infinite values.")
    return value


def tensor_from_bytes(data: bytes, origin: str) -> torch.Tensor:
    """A voicepack from a file's bytes, ``torch.save`` or safetensors (told apart by content, not name)."""
    if data[:2] == b"PK":  # torch.save's zip container
        return check_tensor(_torch_load(data, origin), origin)
    try:
        from safetensors.torch import load as load_safetensors

        tensors = load_safetensors(data)
    except Exception:
        # Not safetensors: perhaps torch.save's legacy (pre-zip) format.
        return check_tensor(_torch_load(data, origin, "neither safetensors nor a torch file"), origin)
    if len(tensors) != 1:
        raise BadVoicepack(f"{origin}: a safetensors voicepack holds one tensor, this one {len(tensors)}.")
    return check_tensor(next(iter(tensors.values())), origin)


def _torch_load(data: bytes, origin: str, what: str = "not a readable torch file") -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)  # weights only: no code runs
    except Exception as exc:
        raise BadVoicepack(f"{origin}: {what} ({type(exc).__name__}).") from None


def read_pack(path: Path) -> torch.Tensor:
    return tensor_from_bytes(path.read_bytes(), str(path))


def meta_for(name: str, sidecar: dict[str, Any] | None = None) -> VoiceMeta:
    """Language from the sidecar, else from the name's prefix (``bm_`` British, male), else American."""
    sidecar = sidecar or {}
    prefix = _PREFIX.match(name.lower())
    lang_code = prefix.group(1) if prefix else "a"
    language = sidecar.get("language")
    language = language.strip() if isinstance(language, str) and language.strip() else None
    if language is not None:
        lang_code = lang_code_of(language)
    gender = sidecar.get("gender") or (_GENDERS[prefix.group(2)] if prefix else None)
    description, source = sidecar.get("description"), sidecar.get("source")
    return VoiceMeta(
        lang_code=lang_code,
        language=listed_language(language, lang_code),
        gender=str(gender) if gender else None,
        description=str(description) if description else None,
        source=str(source) if source else None,
    )


def listed_language(language: str | None, lang_code: str) -> str | None:
    """A locale as given (``en-GB``); else the one Kokoro's own voices of that language list (es -> es-ES)."""
    if language and "-" in language:
        return language
    return _locales().get(lang_code)


def lang_code_of(language: str) -> str:
    """Kokoro's letter for a locale (``en-GB``), a language (``es``) or a letter itself (``b``)."""
    from engines.kokoro.g2p import ENGLISH_LOCALES, LANG_CODES

    key = language.strip().lower().replace("_", "-")
    letters = set(_locales())
    if key in letters:
        return key
    if key in ENGLISH_LOCALES:
        return ENGLISH_LOCALES[key]
    base = key.split("-", 1)[0]
    if base == "en":
        return "a"
    if base in LANG_CODES:
        return LANG_CODES[base]
    known = ", ".join(sorted({"en-US", "en-GB", *LANG_CODES}))
    raise BadVoicepack(f"Unknown voice language {language!r}; Kokoro speaks {known}.")


def read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        value = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadVoicepack(f"{sidecar}: not a JSON object ({exc}).") from None
    if not isinstance(value, dict):
        raise BadVoicepack(f"{sidecar}: not a JSON object.")
    return value


def scan(directory: Path) -> Iterator[tuple[str, torch.Tensor, VoiceMeta, Path]]:
    """Every good voicepack in ``directory`` as (name, tensor, meta, path); the rest are logged and skipped."""
    if not directory.is_dir():
        logger.error("kokoro voices: %s is not a directory; no voices loaded from it", directory)
        return
    files = sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())
    seen: set[str] = set()
    for path in files:
        try:
            name = check_name(path.stem)
            if name.lower() in seen:
                raise BadVoicepack(f"another file in {directory} already defines voice '{name}'")
            meta = meta_for(name, read_sidecar(path))
            tensor = read_pack(path)
        except BadVoicepack as exc:
            reason = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
            logger.warning("kokoro voices: skipped %s", reason)
            continue
        seen.add(name.lower())
        yield name, tensor, meta, path


def write_pack(directory: Path, name: str, tensor: torch.Tensor, sidecar: dict[str, Any]) -> Path:
    """Store ``<name>.pt`` and its sidecar atomically (a crash leaves the old state or the new one)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.pt"
    _atomic_write(directory / f"{name}.json", json.dumps(sidecar, indent=2).encode())
    buffer = io.BytesIO()
    torch.save(tensor.detach().to("cpu", torch.float32).contiguous().clone(), buffer)
    _atomic_write(target, buffer.getvalue())  # last: the .pt is what makes the voice exist
    return target


def delete_pack(directory: Path, name: str) -> None:
    for suffix in (".pt", ".json"):  # the tensor first: without it the voice is gone even if a crash follows
        (directory / f"{name}{suffix}").unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
