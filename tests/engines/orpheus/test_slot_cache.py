"""The slot KV cache computes what each sequence computes alone, as rows join and leave."""

from __future__ import annotations

import asyncio

import numpy as np
import torch
from transformers import DynamicCache

from engines.orpheus.requests import Segment
from engines.orpheus.sampling import counter_uniforms
from engines.orpheus.slot_cache import SlotCache
from tests.engines.orpheus.helpers import synthesize


def _alone(model, prompt: list[int], feeds: list[int]) -> torch.Tensor:
    """Hugging Face's own forward with its own cache: the reference hidden state after each feed."""
    decoder = model.get_decoder()
    cache = DynamicCache()
    out = []
    with torch.inference_mode():
        decoder(input_ids=torch.tensor([prompt]), use_cache=True, past_key_values=cache)
        for t, token in enumerate(feeds):
            hidden = decoder(
                input_ids=torch.tensor([[token]]),
                position_ids=torch.tensor([[len(prompt) + t]]),
                use_cache=True,
                past_key_values=cache,
            ).last_hidden_state[:, -1]
            out.append(hidden[0])
    return torch.stack(out)


def test_rows_join_and_leave_without_changing_each_others_results(orpheus_parts):
    model = orpheus_parts.model
    prompts = {0: list(range(100, 112)), 1: list(range(200, 204)), 2: list(range(300, 308))}
    feeds = {sid: [130000 + 11 * sid + t for t in range(6)] for sid in prompts}
    expected = {sid: _alone(model, prompts[sid], feeds[sid]) for sid in prompts}

    cache = SlotCache(model, max_rows=4, max_len=64)
    rows: list[int] = []  # sequence id in each cache row
    lengths: dict[int, int] = {}
    got: dict[int, list[torch.Tensor]] = {sid: [] for sid in prompts}
    steps = dict.fromkeys(prompts, 0)
    with torch.inference_mode():
        for sid in (0, 1):
            cache.prefill(len(rows), prompts[sid])
            rows.append(sid)
            lengths[sid] = len(prompts[sid])
        for t in range(6):
            if t == 2:  # a third sequence joins mid-flight, into the next free row
                cache.prefill(len(rows), prompts[2])
                rows.append(2)
                lengths[2] = len(prompts[2])
            if t == 4:  # the first leaves: the last row moves into its place, nothing else moves
                cache.move_row(len(rows) - 1, 0, lengths[rows[-1]])
                rows[0] = rows.pop()
            for row, sid in enumerate(rows):
                cache.last[row] = feeds[sid][steps[sid]]
            width = max(lengths[sid] for sid in rows) + 1
            hidden = cache.decode(len(rows), width)
            assert cache.lengths[: len(rows)].tolist() == [lengths[sid] + 1 for sid in rows]
            for row, sid in enumerate(rows):
                got[sid].append(hidden[row])
                lengths[sid] += 1
                steps[sid] += 1
    assert [len(got[sid]) for sid in (0, 1, 2)] == [4, 6, 4]
    for sid in prompts:
        torch.testing.assert_close(torch.stack(got[sid]), expected[sid][: len(got[sid])], atol=1e-5, rtol=1e-4)


def test_counter_uniforms_depend_only_on_seed_and_position():
    seeds = torch.tensor([1, 2, 1, 2**62 + 5])
    counters = torch.tensor([0, 0, 3, 7])
    together = counter_uniforms(seeds, counters)
    for row in range(4):
        alone = counter_uniforms(seeds[row : row + 1], counters[row : row + 1])
        assert alone.item() == together[row].item()
    assert together[0] != together[1] and together[0] != together[2]
    many = counter_uniforms(torch.full((50000,), 9), torch.arange(50000))
    assert 0.0 <= many.min() and many.max() < 1.0 and abs(many.mean().item() - 0.5) < 0.01


# Five requests for four rows (rows leave at different lengths, the fifth joins late), long enough that
# widths differing by mode once sampled a different token for seed 12 at its tenth token.
CASES = [
    {"text": "Hello world.", "voice": "tara", "seed": 11, "max_tokens": 140},
    {"text": "A rather different, and longer, prompt for leo.", "voice": "leo", "seed": 12, "max_tokens": 119},
    {"text": "<laugh> Oh my.", "voice": "zoe", "seed": 13, "max_tokens": 98, "temperature": 0.9},
    {"text": "Numbers 1 2 3.", "voice": "tara", "seed": 14, "max_tokens": 77},
    {"text": "Fifth one joins later.", "voice": "leo", "seed": 15, "max_tokens": 63},
]


async def test_padded_static_shapes_sample_the_same_tokens_and_sound_the_same(make_engine, monkeypatch):
    """``orpheus_cuda_graphs`` pads rows and width to buckets (on CPU without capture). First the tokens
    each request sampled must be the same (a float difference from the padding would show here, as a
    token sampled differently), then, from the same tokens, the same audio (the decode)."""
    tokens: dict[str, dict[tuple[int, str], list[int]]] = {"plain": {}, "padded": {}}
    mode = ["plain"]
    accept = Segment.accept

    def recorded(segment, token, max_tokens):
        tokens[mode[0]].setdefault((segment.seed, segment.text), []).append(token)
        return accept(segment, token, max_tokens)

    monkeypatch.setattr(Segment, "accept", recorded)
    plain = await make_engine(max_batch_size=4, max_wait_ms=600_000.0)
    padded = await make_engine(max_batch_size=4, max_wait_ms=600_000.0, orpheus_cuda_graphs=True)
    a = await asyncio.gather(*(synthesize(plain, **case) for case in CASES))
    mode[0] = "padded"
    b = await asyncio.gather(*(synthesize(padded, **case) for case in CASES))
    assert tokens["plain"].keys() == tokens["padded"].keys() and len(tokens["plain"]) == len(CASES)
    for key, sampled in tokens["plain"].items():
        assert sampled == tokens["padded"][key], key
    for x, y in zip(a, b):
        assert x.shape == y.shape and np.abs(x - y).max() < 1e-4
    assert padded.scheduler.graphs is not None and plain.stats()["max_lm_batch_size_seen"] == 4


def test_default_rows_fit_half_the_free_gpu_memory():
    """Orpheus-3B's shape: 28 layers, 8 KV heads of 128, bf16, 8,192 tokens = ~0.94 GB of KV per row."""
    import types

    import torch
    from transformers import LlamaConfig

    from engines.orpheus.slot_cache import rows_that_fit

    config = LlamaConfig(hidden_size=3072, num_attention_heads=24, num_key_value_heads=8, num_hidden_layers=28)
    weight = torch.zeros(1, dtype=torch.bfloat16)
    model = types.SimpleNamespace(config=config, get_output_embeddings=lambda: types.SimpleNamespace(weight=weight))
    per_row = 2 * 28 * 8 * 128 * 8192 * 2
    assert rows_that_fit(model, 8192, free_bytes=24 * 2**30, cap=32) == 12 * 2**30 // per_row == 13
    assert rows_that_fit(model, 8192, free_bytes=130 * 2**30, cap=32) == 32  # an H200: the cap
    assert rows_that_fit(model, 1024, free_bytes=24 * 2**30, cap=32) == 32  # shorter rows: more fit
    assert rows_that_fit(model, 8192, free_bytes=2**30, cap=32) == 1  # never zero
