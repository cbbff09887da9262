"""Sampling restricted to the tokens that can come next: audio of the next frame slot, or the end.

The LM's vocabulary is 156,940 wide, but after ``start_of_speech`` only 4,096 audio ids (those of
the next slot ``k`` of the 7-token frame) or ``end_of_speech`` (at a frame boundary only, so no
frame is ever cut short) are meaningful. Computing logits for just the audio rows of the output
embedding skips most of the LM head, and every step of the processing below runs on a
``[batch, 4097]`` tensor: repetition penalty, temperature and top-p, per row, with no Python loop.

Each sequence draws one uniform number per token from a counter-based generator (a SplitMix64
hash of its seed and its token index, computed with int64 tensor ops for every row at once, on the
device, with no Python loop), and the token is found by inverse-CDF lookup on that row alone. A
row's result therefore depends only on its own logits, seed and position, never on which other
sequences share the batch, and a seed reproduces a request.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import torch

from engines.errors import InvalidRequest
from engines.orpheus.settings import OrpheusSettings
from engines.orpheus.tokens import (
    AUDIO_BASE,
    AUDIO_TOKENS,
    CODEBOOK_SIZE,
    END_OF_SPEECH,
    FRAME_TOKENS,
)

EOS_COLUMN = CODEBOOK_SIZE  # column of end_of_speech in the [batch, 4097] scores
#: Safe ranges, checked on every path in (HTTP, OpenAI, websocket). Lower bounds matter: in float32 a
#: temperature of 1e-40 or a top_p of 1e-46 is 0, and the step divided by it or kept no token.
RANGES = {"temperature": (0.01, 2.0), "top_p": (0.01, 1.0), "repetition_penalty": (1.1, 2.0)}


def _checked(name: str, value: object) -> float:
    low, high = RANGES[name]
    number = float(value)  # type: ignore[arg-type]
    if not (math.isfinite(number) and low <= number <= high):
        hint = " (its authors require at least 1.1 for stable speech)" if name == "repetition_penalty" else ""
        raise InvalidRequest(f"{name} must be between {low:g} and {high:g} for Orpheus{hint}; got {value}.", param=name)
    return number


@dataclass(frozen=True)
class SamplingParams:
    temperature: float
    top_p: float
    repetition_penalty: float
    max_tokens: int  # already a whole number of frames

    @classmethod
    def resolve(cls, settings: OrpheusSettings, overrides: dict[str, Any]) -> SamplingParams:
        """Server defaults with the request's overrides; raises a 400 for values Orpheus cannot use."""
        penalty = _checked("repetition_penalty", overrides.get("repetition_penalty", settings.repetition_penalty))
        max_tokens = int(overrides.get("max_tokens", settings.max_tokens))
        if max_tokens > settings.max_tokens_limit:
            raise InvalidRequest(
                f"max_tokens may be at most {settings.max_tokens_limit} for Orpheus (got {max_tokens}).",
                param="max_tokens",
            )
        if max_tokens < FRAME_TOKENS:
            raise InvalidRequest(f"max_tokens must be at least {FRAME_TOKENS} (one audio frame).", param="max_tokens")
        return cls(
            temperature=_checked("temperature", overrides.get("temperature", settings.temperature)),
            top_p=_checked("top_p", overrides.get("top_p", settings.top_p)),
            repetition_penalty=penalty,
            # Whole frames only: a budget ending mid-frame would waste the partial frame's tokens.
            max_tokens=max_tokens - max_tokens % FRAME_TOKENS,
        )


def new_seed() -> int:
    return random.SystemRandom().getrandbits(63)


def derive_seed(seed: int, *salt: int) -> int:
    """A well-mixed 63-bit seed for a sub-stream (segment, codec noise) of a seeded request."""
    value = seed & 0xFFFFFFFFFFFFFFFF
    for item in salt:
        value = (value ^ (item + 0x9E3779B97F4A7C15 + (value << 6) + (value >> 2))) & 0xFFFFFFFFFFFFFFFF
        value = (value * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value & 0x7FFFFFFFFFFFFFFF


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN, _MIX1, _MIX2 = (_signed(c) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def _shr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def counter_uniforms(seeds: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    """One uniform in [0, 1) per row from (seed, counter): SplitMix64, int64 arithmetic wrapping mod 2**64."""
    z = seeds + (counters + 1) * _GOLDEN
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    z = z ^ _shr(z, 31)
    return _shr(z, 40).to(torch.float32) * (1.0 / (1 << 24))  # 24 bits: exact in float32


class AudioHead:
    """The audio rows of the LM's output embedding, and sampling over them."""

    def __init__(self, output_embedding: torch.Tensor) -> None:
        # Views, not copies: with tied embeddings these rows are the input embedding's.
        self.audio_weight = output_embedding[AUDIO_BASE : AUDIO_BASE + AUDIO_TOKENS]
        self.eos_weight = output_embedding[END_OF_SPEECH]

    def scores(self, hidden: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """``[batch, 4097]`` float32 logits: the 4096 codes of each row's slot, then end-of-speech."""
        batch = hidden.shape[0]
        weights = self.audio_weight.view(FRAME_TOKENS, CODEBOOK_SIZE, -1)
        if hidden.device.type == "cpu":
            # One matmul per slot present (at most 7), over only the rows in that slot: 1/7 of the
            # multiply-adds of all 28,672 audio logits per row (reading slots is free on CPU).
            audio = hidden.new_empty(batch, CODEBOOK_SIZE)
            slot_list = slots.tolist()
            for slot in sorted(set(slot_list)):
                index = torch.tensor([i for i, s in enumerate(slot_list) if s == slot])
                audio[index] = hidden.index_select(0, index) @ weights[slot].T
        else:
            # On a GPU every audio logit costs less than asking the host which slots are present
            # (a sync per step, and no CUDA graphs): compute all 7 slots, keep each row's own.
            every = (hidden @ self.audio_weight.T).view(batch, FRAME_TOKENS, CODEBOOK_SIZE)
            audio = every.gather(1, slots.view(batch, 1, 1).expand(batch, 1, CODEBOOK_SIZE)).squeeze(1)
        eos = hidden @ self.eos_weight
        eos = torch.where(slots == 0, eos, torch.full_like(eos, float("-inf")))
        return torch.cat([audio, eos[:, None]], dim=1).float()


def sample_columns(
    scores: torch.Tensor,
    seen: torch.Tensor,
    temperature: torch.Tensor,
    top_p: torch.Tensor,
    penalty: torch.Tensor,
    uniforms: torch.Tensor,
) -> torch.Tensor:
    """Pick one column per row of ``scores`` (``[B, 4097]``).

    ``seen`` (``[B, 4096]`` bool) marks codes this sequence already produced in this slot, the
    only tokens a repetition penalty can touch (the prompt holds no audio ids). The order of the
    processors is Hugging Face's and vLLM's: penalty, temperature, top-p.
    """
    audio = scores[:, :EOS_COLUMN]
    p = penalty[:, None]
    penalised = torch.where(audio > 0, audio / p, audio * p)
    scores = torch.cat([torch.where(seen, penalised, audio), scores[:, EOS_COLUMN:]], dim=1)
    scores = scores / temperature[:, None]

    sorted_scores, order = torch.sort(scores, dim=1, descending=True)
    probs = torch.softmax(sorted_scores, dim=1)
    cumulative = probs.cumsum(dim=1)
    # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
    keep = (cumulative - probs) < top_p[:, None]
    keep[:, 0] = True  # whatever top_p is, the most likely token stays (no row may keep nothing)
    kept = torch.where(keep, probs, torch.zeros_like(probs)).cumsum(dim=1)
    target = uniforms[:, None] * kept[:, -1:]
    index = (kept <= target).sum(dim=1, keepdim=True)
    index = torch.minimum(index, keep.sum(dim=1, keepdim=True) - 1).clamp(min=0)
    return order.gather(1, index).squeeze(1)


def columns_to_tokens(columns: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """Map sampled columns back to vocabulary ids."""
    audio = AUDIO_BASE + slots * CODEBOOK_SIZE + columns
    return torch.where(columns == EOS_COLUMN, torch.full_like(columns, END_OF_SPEECH), audio)
