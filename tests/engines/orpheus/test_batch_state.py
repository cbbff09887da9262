"""The left-padded decode batch computes what each sequence computes alone."""

from __future__ import annotations

import torch
from transformers import DynamicCache

from engines.orpheus.batch_state import DecodeBatch, cache_keyword


def _prefill(decoder, kw, ids):
    cache = DynamicCache()
    with torch.inference_mode():
        decoder(input_ids=torch.tensor([ids]), use_cache=True, **{kw: cache})
    return cache


def _alone(decoder, kw, prompt, steps):
    cache = _prefill(decoder, kw, prompt)
    out = []
    with torch.inference_mode():
        for t, token in enumerate(steps):
            h = decoder(
                input_ids=torch.tensor([[token]]),
                position_ids=torch.tensor([[len(prompt) + t]]),
                use_cache=True,
                **{kw: cache},
            ).last_hidden_state[:, -1]
            out.append(h[0])
    return torch.stack(out)


def test_rows_join_and_leave_without_changing_each_others_results(orpheus_parts):
    decoder = orpheus_parts.model.get_decoder()
    kw = cache_keyword(decoder)
    prompts = {0: list(range(100, 112)), 1: list(range(200, 204)), 2: list(range(300, 308))}
    feeds = {sid: [130000 + 11 * sid + t for t in range(6)] for sid in prompts}
    expected = {sid: _alone(decoder, kw, prompts[sid], feeds[sid]) for sid in prompts}

    batch = DecodeBatch(torch.device("cpu"))
    got = {sid: [] for sid in prompts}
    with torch.inference_mode():
        batch.merge([0, 1], [_prefill(decoder, kw, prompts[s]) for s in (0, 1)], [12, 4])
        assert batch.width == 12 and batch.attention_mask().tolist()[1][:9] == [0] * 8 + [1]
        for t in range(6):
            if t == 2:  # a third sequence joins mid-flight
                batch.merge([2], [_prefill(decoder, kw, prompts[2])], [8])
            if t == 4:  # the longest leaves; its padding-only columns are trimmed away
                batch.keep([1, 2])
                assert batch.width == int(batch.lengths.max())
            step = {0: t, 1: t, 2: t - 2}
            inputs = torch.tensor([[feeds[sid][step[sid]]] for sid in batch.ids])
            hidden = decoder(
                input_ids=inputs,
                attention_mask=batch.attention_mask(),
                position_ids=batch.lengths[:, None],
                use_cache=True,
                **{kw: batch.cache},
            ).last_hidden_state[:, -1]
            batch.advance(torch.zeros(len(batch), dtype=torch.long), torch.zeros(len(batch), dtype=torch.long))
            for row, sid in enumerate(batch.ids):
                got[sid].append(hidden[row])
    assert len(got[0]) == 4 and len(got[2]) == 4
    assert len(got[1]) == 6
    for sid in prompts:
        reference = expected[sid][: len(got[sid])]
        assert torch.allclose(torch.stack(got[sid]), reference, atol=1e-5), sid


def test_keep_everything_is_a_no_op_and_keep_nothing_empties(orpheus_parts):
    decoder = orpheus_parts.model.get_decoder()
    kw = cache_keyword(decoder)
    batch = DecodeBatch(torch.device("cpu"))
    with torch.inference_mode():
        batch.merge([5], [_prefill(decoder, kw, [1, 2, 3])], [3])
        batch.keep([5])
        assert batch.ids == [5] and batch.width == 3
        batch.keep([])
    assert len(batch) == 0 and batch.width == 0
