"""Orpheus voices as LoRA adapters: fine-tuned speakers served beside the model's own voices.

A fine-tune teaches Orpheus a new speaker under a name it was trained with (the ``{name}:`` that
starts every training prompt). Shipped as a PEFT LoRA adapter, it is served per request by vLLM
(``LoRARequest``), many adapters in one batch. ``adapters`` (TTS_ORPHEUS_ADAPTERS) maps each served voice to its
adapter directory and, after a colon, the trained speaker name the prompt must say
(``narrator=/adapters/narrator:lucy``); without one, the prompt says the voice's own name.

Everything checkable without the model is checked here at load, so a typo fails the model's load
with the path in the message instead of failing requests later: the directory, its
``adapter_config.json``, its weights file, and its rank against ``max_lora_rank``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.base import Voice
from engines.hub import WeightsUnavailable
from engines.orpheus.settings import OrpheusSettings

#: A voice name and a trained speaker name: what the prompt's "{name}: " can carry, and a URL path segment.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$")
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
#: The ranks vLLM's LoRA kernels are built for; a configured maximum is rounded up to the next one.
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class Adapter:
    name: str  # the voice a request names
    path: Path  # the PEFT directory
    prompt_voice: str  # the speaker name the adapter was trained on: what the prompt says
    rank: int
    lora_id: int  # vLLM's id for it: 1, 2, ... in configuration order, stable for the process

    def voice(self) -> Voice:
        return Voice(
            id=self.name,
            name=self.name,
            language="en-US",
            description=f"LoRA adapter fine-tuned on the speaker '{self.prompt_voice}'.",
            kind="adapter",
        )


def split_target(target: str) -> tuple[str, str | None]:
    """``dir[:voice]`` -> (dir, voice or None). A colon counts only if what follows is a plain name."""
    head, sep, tail = target.rpartition(":")
    if sep and head and NAME.match(tail):
        return head, tail
    return target, None


def load_adapters(configured: dict[str, str], builtin: set[str], max_rank: int) -> dict[str, Adapter]:
    """Check every configured adapter; the result maps each voice name, lowercased, to its adapter."""
    adapters: dict[str, Adapter] = {}
    for lora_id, (name, target) in enumerate(configured.items(), 1):
        where, prompt_voice = split_target(str(target))
        path = Path(where).expanduser()
        if not NAME.match(name):
            raise WeightsUnavailable(
                f"TTS_ORPHEUS_ADAPTERS: '{name}' is not a valid voice name (letters, digits, _-.)."
            )
        if name.lower() in builtin or name.lower() in adapters:
            raise WeightsUnavailable(
                f"TTS_ORPHEUS_ADAPTERS: voice '{name}' ({path}) is already a voice of the model; give the adapter "
                f"another name, and the trained speaker after a colon ({name}_ft={path}:{name})."
            )
        config = _read_config(path)
        rank = int(config.get("r") or 0)
        if rank > max_rank:
            raise WeightsUnavailable(
                f"Orpheus adapter '{name}' at {path} has rank {rank}, more than TTS_ORPHEUS_MAX_LORA_RANK={max_rank}."
            )
        adapters[name.lower()] = Adapter(name, path.resolve(), prompt_voice or name, rank, lora_id)
    return adapters


def vllm_lora_args(settings: OrpheusSettings, adapters: dict[str, Adapter]) -> dict[str, Any]:
    """vLLM's LoRA engine arguments: only when adapters are configured (LoRA layers cost every step a little)."""
    if not adapters:
        return {}
    return {
        "enable_lora": True,
        "max_loras": min(settings.max_loras, len(adapters)),
        "max_lora_rank": next(rank for rank in VLLM_RANKS if rank >= settings.max_lora_rank),
        "max_cpu_loras": max(settings.max_loras, len(adapters)),  # every adapter stays loaded in memory
    }


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise WeightsUnavailable(f"Orpheus adapter directory {path} does not exist (TTS_ORPHEUS_ADAPTERS).")
    config_file = path / "adapter_config.json"
    if not config_file.is_file():
        raise WeightsUnavailable(f"{path} is not a PEFT adapter: it has no adapter_config.json.")
    if not any((path / weights).is_file() for weights in WEIGHTS):
        raise WeightsUnavailable(f"{path} has no adapter weights ({' or '.join(WEIGHTS)}).")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsUnavailable(f"{config_file} is not readable JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("peft_type", "LORA") != "LORA":
        raise WeightsUnavailable(f"{config_file}: not a LoRA adapter (peft_type {config.get('peft_type')!r}).")
    return config
