"""Find and load Orpheus's LM, tokenizer and the SNAC 24 kHz codec.

Both come from a local directory in the Hugging Face repo's layout, or from the Hub at the pinned
revision (``tts-server download`` fetches them ahead of time; serving never downloads while a
request waits). Nothing here is a module-level singleton: the engine owns what this returns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engines.hub import WeightsUnavailable, resolve_model_dir
from engines.orpheus.settings import OrpheusSettings
from engines.orpheus.tokens import AUDIO_BASE, AUDIO_TOKENS, END_OF_TEXT, START_OF_HUMAN

logger = logging.getLogger(__name__)

LM_FILES = ["*.json", "*.safetensors"]  # config, generation config, shards and index, tokenizer files
LM_REQUIRED = ["config.json", "tokenizer.json", "tokenizer_config.json"]
SNAC_FILES = ["config.json", "pytorch_model.bin"]
# The default longest sequence when the model allows more (Llama 3.2's 131,072): Orpheus was trained on
# 8,192-token sequences (prompt and ~95 s of audio), and every position more costs KV memory per row.
MAX_MODEL_LEN_CAP = 8192


def lm_dir(settings: OrpheusSettings) -> Path:
    path = resolve_model_dir(
        settings.source,
        revision=settings.revision,
        allow_patterns=LM_FILES,
        required=LM_REQUIRED,
        cache_dir=settings.cache_dir,
        offline=settings.offline,
        setting="orpheus_source",
    )
    if not any(path.glob("*.safetensors")):
        raise WeightsUnavailable(f"{path} has no *.safetensors weights; is it canopylabs/orpheus-3b-0.1-ft?")
    return path


def snac_dir(settings: OrpheusSettings) -> Path:
    return resolve_model_dir(
        settings.snac_source,
        revision=settings.snac_revision,
        allow_patterns=SNAC_FILES,
        required=SNAC_FILES,
        cache_dir=settings.cache_dir,
        offline=settings.offline,
        setting="orpheus_snac_source",
    )


def load_tokenizer(directory: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    # The prompt relies on these ids; a tokenizer from another model would silently garble it.
    for token, expected in (("<|eot_id|>", END_OF_TEXT), ("<custom_token_3>", START_OF_HUMAN)):
        actual = tokenizer.convert_tokens_to_ids(token)
        if actual != expected:
            raise WeightsUnavailable(f"{directory}: tokenizer maps {token} to {actual}, Orpheus needs {expected}.")
    return tokenizer


def load_lm(directory: Path, device: str, dtype: str) -> Any:
    from transformers import AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch_dtype, local_files_only=True)
    if model.dtype != torch_dtype:  # transformers < 4.56 ignores `dtype=` (it was `torch_dtype=`)
        model = model.to(torch_dtype)
    rows = model.get_output_embeddings().weight.shape[0]
    if rows < AUDIO_BASE + AUDIO_TOKENS:
        raise WeightsUnavailable(f"{directory}: vocabulary of {rows} lacks Orpheus's audio tokens.")
    return model.to(device).eval()


def load_snac(directory: Path) -> torch.nn.Module:
    from snac import SNAC

    return SNAC.from_pretrained(str(directory)).eval()


def model_positions(directory: Path) -> int | None:
    """The positions the LM's ``config.json`` allows (``max_position_embeddings``), if it says."""
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    positions = config.get("max_position_embeddings")
    return int(positions) if positions else None


def resolve_max_model_len(setting: int | None, directory: Path) -> int:
    """``orpheus_max_model_len``: the model's own limit capped at :data:`MAX_MODEL_LEN_CAP` by default;
    an explicit value above the model's limit is refused here, with both numbers, not deep in vLLM."""
    positions = model_positions(directory)
    if setting is None:
        return min(positions, MAX_MODEL_LEN_CAP) if positions else MAX_MODEL_LEN_CAP
    if positions is not None and setting > positions:
        raise ValueError(
            f"orpheus_max_model_len (TTS_ORPHEUS_MAX_MODEL_LEN) is {setting}, but the model in {directory} allows "
            f"{positions} positions (max_position_embeddings in its config.json): set at most {positions}, "
            "or leave it unset to use the model's own limit."
        )
    return setting


@dataclass
class OrpheusComponents:
    model: Any  # None with the vLLM backend, which loads the LM itself from lm_path
    tokenizer: Any
    snac: torch.nn.Module
    device: str
    lm_path: Path | None = None
    max_model_len: int = MAX_MODEL_LEN_CAP  # resolve_max_model_len's answer for this model


def load_all(settings: OrpheusSettings) -> OrpheusComponents:
    """Resolve and load everything (blocking; run it off the event loop)."""
    device = settings.resolved_device()
    dtype = settings.resolved_dtype(device)
    lm_path, snac_path = lm_dir(settings), snac_dir(settings)
    max_model_len = resolve_max_model_len(settings.max_model_len, lm_path)  # before loading anything
    tokenizer = load_tokenizer(lm_path)
    model = load_lm(lm_path, device, dtype)
    snac = load_snac(snac_path)
    logger.info("Orpheus LM from %s (%s, %s), SNAC from %s", lm_path, device, dtype, snac_path)
    return OrpheusComponents(model, tokenizer, snac, device, lm_path, max_model_len)


def load_for_vllm(settings: OrpheusSettings) -> OrpheusComponents:
    """Tokenizer and SNAC only: vLLM loads the LM's weights itself (in its engine process)."""
    device = settings.resolved_device()
    lm_path, snac_path = lm_dir(settings), snac_dir(settings)
    max_model_len = resolve_max_model_len(settings.max_model_len, lm_path)
    return OrpheusComponents(None, load_tokenizer(lm_path), load_snac(snac_path), device, lm_path, max_model_len)


def prefetch(settings: OrpheusSettings) -> list[str]:
    return [f"Orpheus LM in {lm_dir(settings)}", f"SNAC 24 kHz codec in {snac_dir(settings)}"]
