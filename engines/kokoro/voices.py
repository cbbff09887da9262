"""Kokoro voices: the catalog, the style packs on disk, and mixes like ``af_bella(2)+af_heart(1)``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from engines.base import Voice
from engines.errors import InvalidVoice
from voices import load_catalog

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
    """Style packs (``[510, 1, 256]`` each) loaded once onto the model's device."""

    def __init__(self, voices_dir: Path, device: str) -> None:
        catalog = {v["id"]: v for v in load_catalog("kokoro")["voices"]}
        self._packs: dict[str, torch.Tensor] = {}
        self._info: dict[str, Voice] = {}
        for path in sorted(voices_dir.glob("*.pt")):
            name = path.stem
            self._packs[name] = torch.load(path, map_location="cpu", weights_only=True).to(device)
            meta = catalog.get(name, {})
            self._info[name] = Voice(id=name, name=name, language=meta.get("language"), gender=meta.get("gender"))
        # Voices outside the catalog (an operator's own .pt files) still work; the prefix gives the accent.
        self.lang_codes = {name: catalog.get(name, {}).get("lang_code", name[:1]) for name in self._packs}

    def voices(self) -> list[Voice]:
        return list(self._info.values())

    def resolve(self, spec: str) -> VoiceMix:
        """Parse ``spec`` and map each name to a loaded voice, ignoring case ("AF_Heart" works)."""
        by_lower = {name.lower(): name for name in self._packs}
        mix = parse_voice_spec(spec)
        unknown = [name for name, _ in mix.parts if name.lower() not in by_lower]
        if unknown:
            known = ", ".join(sorted(self._packs)) or "none"
            raise InvalidVoice(f"Unknown voice {', '.join(map(repr, unknown))}. Available: {known}.")
        return VoiceMix(tuple((by_lower[name.lower()], weight) for name, weight in mix.parts))

    def pack(self, mix: VoiceMix) -> torch.Tensor:
        if len(mix.parts) == 1:
            return self._packs[mix.primary]
        return sum(self._packs[name] * weight for name, weight in mix.parts)
