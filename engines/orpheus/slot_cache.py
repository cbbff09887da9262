"""A preallocated KV cache with one slot per running sequence, and the Llama forward that fills it.

Keys and values of layer ``l`` live in ``[max_rows, kv_heads, max_len, head_dim]`` tensors
allocated once. Running sequences occupy rows ``0 .. rows-1``: each writes its tokens at its own
positions ``0 .. length-1`` (right padding, per-row positions and a per-row mask), so a decode step
attends over a *view* ``[:rows, :, :width]`` of the cache and never copies it. A sequence joins by
prefilling straight into the next free row; one that leaves is replaced by the last row, whose
``length`` columns are the only KV that moves. Nothing is concatenated per token.

The forward is written here over the Hugging Face model's own modules (embeddings, projections,
norms, MLPs, rotary embedding), because the cache layout and masks are ours and the attention
wiring of ``LlamaModel.forward`` changes between transformers releases. Orpheus is a Llama.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from engines.orpheus.tokens import CODEBOOK_SIZE, FRAME_TOKENS


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_half(x) * sin


def rows_that_fit(model: Any, max_len: int, free_bytes: int, cap: int, share: float = 0.5) -> int:
    """Rows of ``max_len`` tokens whose KV cache fits in ``share`` of ``free_bytes`` (at least 1, at most
    ``cap``): the default batch on CUDA, where 32 rows of Orpheus-3B at 8,192 tokens need ~30 GB."""
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    element = model.get_output_embeddings().weight.element_size()
    per_row = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * max_len * element
    return max(1, min(cap, int(free_bytes * share) // per_row))


class SlotCache:
    """KV tensors plus every other per-row tensor a decode step reads and writes, all on device."""

    def __init__(self, model: Any, max_rows: int, max_len: int) -> None:
        self.decoder = model.get_decoder()
        config = model.config
        weight = model.get_output_embeddings().weight
        self.device, self.dtype = weight.device, weight.dtype
        self.max_rows, self.max_len = max_rows, max_len
        layers = self.decoder.layers
        attn = layers[0].self_attn
        self.head_dim = attn.head_dim
        self.kv_heads = config.num_key_value_heads
        shape = (max_rows, self.kv_heads, max_len, self.head_dim)
        kw = {"device": self.device, "dtype": self.dtype}
        self.keys = [torch.zeros(shape, **kw) for _ in layers]
        self.values = [torch.zeros(shape, **kw) for _ in layers]
        long = {"device": self.device, "dtype": torch.long}
        self.lengths = torch.zeros(max_rows, **long)  # tokens cached = position of the next one
        self.last = torch.zeros(max_rows, **long)  # last sampled token: the next step's input
        self.slots = torch.zeros(max_rows, **long)  # frame slot of the next token to sample
        self.seeds = torch.zeros(max_rows, **long)  # sampling seed of each row
        self.counters = torch.zeros(max_rows, **long)  # tokens sampled so far (the RNG counter)
        self.seen = torch.zeros(max_rows, FRAME_TOKENS, CODEBOOK_SIZE, dtype=torch.bool, device=self.device)
        f32 = {"device": self.device, "dtype": torch.float32}
        self.temperature = torch.ones(max_rows, **f32)
        self.top_p = torch.ones(max_rows, **f32)
        self.penalty = torch.ones(max_rows, **f32)
        self._row_tensors = [
            self.lengths,
            self.last,
            self.slots,
            self.seeds,
            self.counters,
            self.seen,
            self.temperature,
            self.top_p,
            self.penalty,
        ]

    # -- rows join and leave ----------------------------------------------------------------------
    def reset_row(self, row: int, *, seed: int, temperature: float, top_p: float, penalty: float) -> None:
        """Per-row state of a joining sequence (small writes, once per join)."""
        self.lengths[row] = 0
        self.slots[row] = 0
        self.counters[row] = 0
        self.seeds[row] = seed
        self.seen[row] = False
        self.temperature[row] = temperature
        self.top_p[row] = top_p
        self.penalty[row] = penalty

    def resume_row(self, row: int, tokens: list[int], audio_base: int) -> None:
        """A sequence that left its row (parked for a higher-priority request) comes back with ``tokens``
        already sampled: its sampler continues with the same counter, frame slot and repetition memory."""
        n = len(tokens)
        self.counters[row] = n
        self.slots[row] = n % FRAME_TOKENS
        if n:
            positions = torch.arange(n) % FRAME_TOKENS
            codes = torch.tensor(tokens, dtype=torch.long) - audio_base - positions * CODEBOOK_SIZE
            valid = (codes >= 0) & (codes < CODEBOOK_SIZE)
            self.seen[row, positions[valid].to(self.device), codes[valid].to(self.device)] = True

    def move_row(self, source: int, target: int, length: int) -> None:
        """Row ``source`` takes the place of ``target`` (which left): only its ``length`` KV columns move."""
        if source == target:
            return
        for cache in (*self.keys, *self.values):
            cache[target, :, :length] = cache[source, :, :length]
        for tensor in self._row_tensors:
            tensor[target] = tensor[source]

    # -- the forward ------------------------------------------------------------------------------
    def _layers(self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, write, attend) -> torch.Tensor:
        """Run every decoder layer; ``write(l, k, v)`` stores new KV, ``attend(l, q)`` returns attention."""
        for index, layer in enumerate(self.decoder.layers):
            attn = layer.self_attn
            residual = hidden
            x = layer.input_layernorm(hidden)
            batch, steps, _ = x.shape
            q = attn.q_proj(x).view(batch, steps, -1, self.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(batch, steps, -1, self.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(batch, steps, -1, self.head_dim).transpose(1, 2)
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
            write(index, k, v)
            out = attend(index, q, attn.scaling)
            hidden = residual + attn.o_proj(out.transpose(1, 2).reshape(batch, steps, -1))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return self.decoder.norm(hidden)

    def prefill(self, row: int, prompt: list[int]) -> torch.Tensor:
        """Process ``prompt`` into row ``row`` (positions ``0 .. n-1``); returns the last hidden state ``[1, H]``."""
        n = len(prompt)
        ids = torch.tensor([prompt], dtype=torch.long, device=self.device)
        positions = torch.arange(n, device=self.device)[None, :]
        hidden = self.decoder.embed_tokens(ids)
        cos, sin = self.decoder.rotary_emb(hidden, positions)
        cos, sin = cos[:, None], sin[:, None]

        def write(layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
            self.keys[layer][row, :, :n] = k[0]
            self.values[layer][row, :, :n] = v[0]

        def attend(layer: int, q: torch.Tensor, scale: float) -> torch.Tensor:
            groups = q.shape[1] // self.kv_heads
            k = self.keys[layer][row : row + 1, :, :n].repeat_interleave(groups, dim=1)  # once per join
            v = self.values[layer][row : row + 1, :, :n].repeat_interleave(groups, dim=1)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)

        out = self._layers(hidden, cos, sin, write, attend)
        self.lengths[row] = n
        return out[:, -1]

    def decode(self, rows: int, width: int) -> torch.Tensor:
        """One token for rows ``0 .. rows-1`` (inputs ``last``, positions ``lengths``); returns ``[rows, H]``.

        ``width`` bounds every row's length after this step (the host knows it without asking the
        device). Rows past their real length see only masked columns, so each row computes exactly
        what it would alone. ``lengths`` advances by one.
        """
        positions = self.lengths[:rows]
        row_index = torch.arange(rows, device=self.device)
        hidden = self.decoder.embed_tokens(self.last[:rows, None])
        cos, sin = self.decoder.rotary_emb(hidden, positions[:, None])
        cos, sin = cos[:, None], sin[:, None]
        # Bool mask [rows, 1, 1, width]: a row attends to its own cached tokens and the new one.
        mask = (torch.arange(width, device=self.device)[None, :] <= positions[:, None])[:, None, None, :]
        write_at = positions.clamp(max=self.max_len - 1)  # free rows padded in (CUDA graphs) stay in bounds

        def write(layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
            self.keys[layer][row_index, :, write_at] = k[:, :, 0]
            self.values[layer][row_index, :, write_at] = v[:, :, 0]

        def attend(layer: int, q: torch.Tensor, scale: float) -> torch.Tensor:
            # Grouped-query attention without repeating the cache: the query heads sharing a KV head
            # become that head's "query positions" (one token each, all under the row's mask).
            heads = q.shape[1]
            grouped = q.reshape(rows, self.kv_heads, heads // self.kv_heads, self.head_dim)
            k = self.keys[layer][:rows, :, :width]
            v = self.values[layer][:rows, :, :width]
            out = F.scaled_dot_product_attention(grouped, k, v, attn_mask=mask, scale=scale)
            return out.reshape(rows, heads, 1, self.head_dim)

        out = self._layers(hidden, cos, sin, write, attend)
        self.lengths[:rows] += 1
        return out[:, -1]
