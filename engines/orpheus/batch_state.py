"""The decode batch: one KV cache row per running sequence, left-padded to a common length.

Sequences are prefilled one at a time (so a prompt never sits next to padding, whose attention
rows can be NaN) and their caches are merged into the batch by left-padding with zeros. Padding is
masked out by the 2-D attention mask, and every row carries its own position ids, so a row
computes the same thing it would compute alone. Rows leave by index selection; columns that have
become padding in every row are trimmed.

Row-aligned tensors that are not KV (the repetition-penalty memory) live here too, so that one
``select``/``merge`` keeps everything in the same order.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from engines.orpheus.tokens import CODEBOOK_SIZE, FRAME_TOKENS

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [rows, heads, time, dim]


def cache_keyword(decoder: torch.nn.Module) -> str:
    """transformers renames ``past_key_values`` to ``cache`` (removal planned for 5.40)."""
    params = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_tensors(cache: DynamicCache) -> KV:
    if hasattr(cache, "layers"):  # transformers >= 4.56
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))


def build_cache(kv: KV) -> DynamicCache:
    cache = DynamicCache()
    for index, (keys, values) in enumerate(kv):
        cache.update(keys, values, index)
    return cache


def _left_pad(kv: KV, columns: int) -> KV:
    if columns == 0:
        return kv
    return [(F.pad(k, (0, 0, columns, 0)), F.pad(v, (0, 0, columns, 0))) for k, v in kv]


class DecodeBatch:
    """KV rows, real lengths and per-slot "already produced" code masks of the running sequences."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.ids: list[int] = []  # sequence id of each row
        self.lengths = torch.zeros(0, dtype=torch.long, device=device)  # real tokens in the cache
        self.seen = torch.zeros(0, FRAME_TOKENS, CODEBOOK_SIZE, dtype=torch.bool, device=device)
        self.cache: DynamicCache | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def width(self) -> int:
        """Cache columns, padding included."""
        return 0 if self.cache is None else int(cache_tensors(self.cache)[0][0].shape[2])

    def attention_mask(self, extra: int = 1) -> torch.Tensor:
        """``[rows, width + extra]``: 0 on each row's left padding, 1 on its tokens and the new ones."""
        pads = self.width - self.lengths
        columns = torch.arange(self.width + extra, device=self.device)
        return (columns[None, :] >= pads[:, None]).long()

    def merge(self, ids: Sequence[int], caches: Sequence[DynamicCache], lengths: Sequence[int]) -> None:
        """Add freshly prefilled single-row caches (``lengths[i]`` columns each) as new rows."""
        if not ids:
            return
        width = max([self.width, *lengths])
        parts: list[KV] = []
        if self.cache is not None:
            parts.append(_left_pad(cache_tensors(self.cache), width - self.width))
        for cache, length in zip(caches, lengths):
            parts.append(_left_pad(cache_tensors(cache), width - length))
        layers = len(parts[0])
        merged = [(torch.cat([p[i][0] for p in parts]), torch.cat([p[i][1] for p in parts])) for i in range(layers)]
        self.cache = build_cache(merged)
        self.ids.extend(ids)
        new_lengths = torch.tensor(list(lengths), dtype=torch.long, device=self.device)
        self.lengths = torch.cat([self.lengths, new_lengths])
        fresh = torch.zeros(len(ids), FRAME_TOKENS, CODEBOOK_SIZE, dtype=torch.bool, device=self.device)
        self.seen = torch.cat([self.seen, fresh])

    def keep(self, ids: Sequence[int]) -> None:
        """Keep only the rows of ``ids`` (in their current order) and trim all-padding columns."""
        wanted = set(ids)
        rows = [i for i, sid in enumerate(self.ids) if sid in wanted]
        if len(rows) == len(self.ids):
            return
        if not rows:
            self.__init__(self.device)  # type: ignore[misc]
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        self.ids = [self.ids[i] for i in rows]
        self.lengths = self.lengths.index_select(0, index)
        self.seen = self.seen.index_select(0, index)
        trim = self.width - int(self.lengths.max())
        kv = [
            (k.index_select(0, index)[:, :, trim:], v.index_select(0, index)[:, :, trim:])
            for k, v in cache_tensors(self.cache)
        ]
        self.cache = build_cache(kv)

    def advance(self, slots: torch.Tensor, columns: torch.Tensor) -> None:
        """After a decode step: every row has one more cached token; remember the produced codes."""
        self.lengths = self.lengths + 1
        audio = columns < CODEBOOK_SIZE  # end_of_speech is not a code
        rows = torch.arange(len(self.ids), device=self.device)
        self.seen[rows[audio], slots[audio], columns[audio]] = True

    def remember(self, row: int, slot: int, column: int) -> None:
        """Record a code sampled for a row outside a decode step (the prefill's first token)."""
        if column < CODEBOOK_SIZE:
            self.seen[row, slot, column] = True
