"""Kokoro voices: the catalog, the style packs on disk, and mixes like ``af_bella(2)+af_heart(1)``."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from engines.base import Voice
from engines.errors import InvalidVoice
from engines.kokoro.voicepacks import VoiceMeta, meta_for, scan
from voices import load_catalog

logger = logging.getLogger(__name__)

_PART = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*(?:\(\s*(\d+(?:\.\d+)?|\.\d+)\s*\))?\s*$")
#: Weights are relative; this range keeps the mix's arithmetic finite and exact enough (1e308 each
#: overflowed the sum; a weight of 10**309 parsed as inf and made NaN style vectors).
MIN_WEIGHT, MAX_WEIGHT = 0.01, 100.0
MAX_VOICES = 8  # voices in one mix


@dataclass(frozen=True)
class VoiceMix:
    """A parsed voice spec: names with normalised weights summing to 1."""

    parts: tuple[tuple[str, float], ...]

    @property
    def primary(self) -> str:
        return self.parts[0][0]


def parse_voice_spec(spec: str) -> VoiceMix:
    parts: list[tuple[str, float]] = []
    for raw in spec.split("+"):
        match = _PART.match(raw)
        if not match:
            raise InvalidVoice(
                f"Cannot parse voice '{spec}'. Use a name ('af_heart'), a mix ('af_bella+af_heart') "
                "or a weighted mix ('af_bella(2)+af_heart(1)')."
            )
        weight = float(match.group(2)) if match.group(2) else 1.0
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT:  # also false for inf and nan
            raise InvalidVoice(f"Voice weights must be between {MIN_WEIGHT:g} and {MAX_WEIGHT:g}: '{raw.strip()}'.")
        parts.append((match.group(1), weight))
        if len(parts) > MAX_VOICES:
            raise InvalidVoice(f"A voice mix may name at most {MAX_VOICES} voices.")
    total = sum(w for _, w in parts)
    return VoiceMix(tuple((name, w / total) for name, w in parts))


class VoiceBank:
    """Style packs (``[510, 1, 256]`` each) on the model's device: the weights' own voices, packs from
    the operator's directories, and voices saved over the API. Names are unique ignoring case."""

    def __init__(self, voices_dir: Path, device: str) -> None:
        self.device = device
        catalog = {v["id"]: v for v in load_catalog("kokoro")["voices"]}
        self._packs: dict[str, torch.Tensor] = {}
        self._info: dict[str, Voice] = {}
        self.lang_codes: dict[str, str] = {}
        self._by_lower: dict[str, str] = {}
        for path in sorted(voices_dir.glob("*.pt")):
            name = path.stem
            meta = catalog.get(name)
            # Voices outside the catalog (an operator's own .pt files) still work; the prefix gives the accent.
            info = VoiceMeta(meta["lang_code"], meta.get("language"), meta.get("gender")) if meta else meta_for(name)
            self.add(name, torch.load(path, map_location="cpu", weights_only=True), info, "builtin")

    def add_directory(self, directory: Path, kind: str = "directory") -> list[str]:
        """Load every voicepack in ``directory``; a name already taken is refused (logged), never replaced."""
        added = []
        for name, tensor, meta, path in scan(directory):
            taken = self.find(name)
            if taken is not None:
                logger.error(
                    "kokoro voices: refused %s: its name collides with the %s voice '%s'; rename the file",
                    path,
                    self._info[taken].kind,
                    taken,
                )
                continue
            self.add(name, tensor, meta, kind)
            added.append(name)
        if added:
            logger.info("kokoro voices: %d from %s (%s)", len(added), directory, ", ".join(added))
        return added

    def add(self, name: str, tensor: torch.Tensor, meta: VoiceMeta, kind: str) -> Voice:
        voice = Voice(
            id=name,
            name=name,
            language=meta.language,
            gender=meta.gender,
            description=meta.description,
            kind=kind,
            source=meta.source,
        )
        self._packs[name] = tensor.to(self.device)
        self._info[name] = voice
        self.lang_codes[name] = meta.lang_code
        self._by_lower[name.lower()] = name
        return voice

    def remove(self, name: str) -> None:
        del self._packs[name], self._info[name], self.lang_codes[name], self._by_lower[name.lower()]

    def find(self, name: str) -> str | None:
        """The loaded voice ``name`` names, ignoring case (None if there is none)."""
        return self._by_lower.get(name.lower())

    def info(self, name: str) -> Voice:
        return self._info[name]

    def voices(self) -> list[Voice]:
        return list(self._info.values())

    def resolve(self, spec: str) -> VoiceMix:
        """Parse ``spec`` and map each name to a loaded voice, ignoring case ("AF_Heart" works)."""
        mix = parse_voice_spec(spec)
        unknown = [name for name, _ in mix.parts if name.lower() not in self._by_lower]
        if unknown:
            known = ", ".join(sorted(self._packs)) or "none"
            raise InvalidVoice(f"Unknown voice {', '.join(map(repr, unknown))}. Available: {known}.")
        return VoiceMix(tuple((self._by_lower[name.lower()], weight) for name, weight in mix.parts))

    def pack(self, mix: VoiceMix) -> torch.Tensor:
        if len(mix.parts) == 1:
            return self._packs[mix.primary]
        return sum(self._packs[name] * weight for name, weight in mix.parts)
