"""The vLLM slot processors against the installed vLLM's own classes (no engine started).

Marked ``vllm`` (run by ``tests/vllm_tier.sh``). The V1 processor follows synthetic batch updates
(added, removed, moved and swapped rows; a request without the extra arg is never touched); the V2
processor reads slots and positions from a real ``RequestState`` and ``LogitsContext``, and vLLM's
loaders accept each class for its own runner only.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("vllm", reason="run through tests/vllm_tier.sh")
pytestmark = pytest.mark.vllm

from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402
from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext, LogitsProcRequestState  # noqa: E402
from vllm.v1.worker.gpu.states import RequestState  # noqa: E402

from engines.orpheus import vllm_slots  # noqa: E402
from engines.orpheus.tokens import AUDIO_BASE, CODEBOOK_SIZE, END_OF_SPEECH, VOCAB_SIZE  # noqa: E402
from engines.orpheus.vllm_slots import OrpheusSlots, OrpheusSlotsV2  # noqa: E402

ORPHEUS = SamplingParams(extra_args={"orpheus_slots": True})
OTHER = SamplingParams()  # a request without the extra arg


def allowed(slot: int) -> torch.Tensor:
    """The ids slot ``slot`` may say: its 4,096 codes, and end of speech at a frame boundary."""
    mask = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
    mask[AUDIO_BASE + slot * CODEBOOK_SIZE : AUDIO_BASE + (slot + 1) * CODEBOOK_SIZE] = True
    mask[END_OF_SPEECH] = slot == 0
    return mask


def check(before: torch.Tensor, after: torch.Tensor, expected: dict[int, int | None]) -> None:
    """Row -> the slot it must be narrowed to, or None: untouched."""
    for row, slot in expected.items():
        if slot is None:
            assert torch.equal(after[row], before[row]), f"row {row} was touched"
        else:
            assert torch.equal(torch.isfinite(after[row]), allowed(slot)), f"row {row} is not slot {slot}"
            kept = allowed(slot)
            assert torch.equal(after[row][kept], before[row][kept])  # masked, never rescaled


def update(added=(), removed=(), moved=(), size=4) -> BatchUpdate:
    return BatchUpdate(batch_size=size, removed=list(removed), added=list(added), moved=list(moved))


def applied_v1(processor: OrpheusSlots, rows: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(rows, VOCAB_SIZE)
    return logits, processor.apply(logits.clone())


@pytest.fixture
def v1() -> OrpheusSlots:
    config = SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: VOCAB_SIZE))
    return OrpheusSlots(config, torch.device("cpu"), is_pin_memory=False)


def test_v1_rows_follow_their_requests_through_added_removed_moved_and_swapped(v1):
    a, b, c = [], [0, 0, 0], [0] * 12  # live output lists: slots 0, 3 and 5
    v1.update_state(update(added=[(0, ORPHEUS, [1], a), (1, OTHER, [1], []), (2, ORPHEUS, [1], b)]))
    check(*applied_v1(v1), {0: 0, 1: None, 2: 3, 3: None})

    a.extend([0, 0])  # vLLM appends to the very list it handed over: the next step sees slot 2
    check(*applied_v1(v1), {0: 2, 1: None, 2: 3})

    v1.update_state(update(removed=[0], added=[(3, ORPHEUS, [1], c)]))  # row 0 leaves; c joins at 3
    check(*applied_v1(v1), {0: None, 1: None, 2: 3, 3: 5})

    v1.update_state(update(moved=[(2, 0, MoveDirectionality.UNIDIRECTIONAL)]))  # condensed: b to row 0
    check(*applied_v1(v1), {0: 3, 1: None, 2: None, 3: 5})

    v1.update_state(update(moved=[(0, 3, MoveDirectionality.SWAP)]))  # b <-> c
    check(*applied_v1(v1), {0: 5, 1: None, 2: None, 3: 3})

    v1.update_state(update(moved=[(1, 3, MoveDirectionality.SWAP)]))  # the other request <-> b
    check(*applied_v1(v1), {0: 5, 1: 3, 2: None, 3: None})

    # A request without the extra arg added over a row of ours replaces it: untouched from then on.
    v1.update_state(update(added=[(0, OTHER, [1], [0])]))
    check(*applied_v1(v1), {0: None, 1: 3, 2: None, 3: None})
    v1.update_state(update(removed=[1]))
    logits = torch.randn(4, VOCAB_SIZE)
    assert v1.apply(logits) is logits and torch.isfinite(logits).all()  # no request of ours: no work
    v1.update_state(None)  # a step without changes


def test_v1_is_not_argmax_invariant(v1):
    assert v1.is_argmax_invariant() is False  # so vLLM applies it to greedy requests too


@pytest.fixture
def v2_state(monkeypatch) -> RequestState:
    from vllm.v1.worker.gpu import buffer_utils

    # No pinned memory on a CPU-only torch: vLLM's own fallback for such platforms (plain buffers).
    monkeypatch.setattr(buffer_utils, "is_uva_available", lambda: False)
    return RequestState(
        max_num_reqs=8,
        max_model_len=64,
        max_num_batched_tokens=64,
        num_speculative_steps=0,
        vocab_size=VOCAB_SIZE,
        device=torch.device("cpu"),
    )


def admit(state: RequestState, processor: OrpheusSlotsV2, name: str, params, prompt: int, output: int = 0) -> int:
    """As the V2 runner admits a request (``output`` > 0: resumed after preemption with its output)."""
    state.add_request(name, prompt, list(range(prompt + output)), num_computed_tokens=0, max_tokens=32)
    slot = state.req_id_to_index[name]
    state.prompt_len.copy_to_uva()  # the runner's apply_staged_writes, the part this processor reads
    assert processor.add_request(slot, params) is (params is ORPHEUS)
    processor.apply_staged_writes()
    return slot


def context(state: RequestState, rows: list[tuple[int, int]]) -> LogitsContext:
    """``rows``: (request slot, tokens in its sequence before the one sampled in this row)."""
    slots = torch.tensor([slot for slot, _ in rows], dtype=torch.int32)
    order = list(dict.fromkeys(slot for slot, _ in rows))
    return LogitsContext(
        expanded_idx_mapping=slots,
        idx_mapping=torch.tensor(order, dtype=torch.int32),
        idx_mapping_np=np.array(order, dtype=np.int32),
        expanded_local_pos=torch.zeros(len(rows), dtype=torch.int32),
        input_ids=torch.zeros(len(rows), dtype=torch.int32),
        pos=torch.tensor([length - 1 for _, length in rows], dtype=torch.int64),  # the row's input position
        seq_lens_upper_bound_np=np.array([length for _, length in rows], dtype=np.int32),
    )


def applied_v2(processor: OrpheusSlotsV2, ctx: LogitsContext) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(ctx.expanded_idx_mapping.numel(), VOCAB_SIZE)
    return logits, processor.apply(logits.clone(), ctx)


def test_v2_narrows_each_row_to_its_requests_next_slot(v2_state):
    processor = OrpheusSlotsV2(None, LogitsProcRequestState.from_request_state(v2_state))
    a = admit(v2_state, processor, "a", ORPHEUS, prompt=5)
    other = admit(v2_state, processor, "other", OTHER, prompt=9)
    b = admit(v2_state, processor, "b", ORPHEUS, prompt=12, output=7)  # resumed: prefill past its prompt
    # a's first token (slot 0, end of speech allowed), another request, b's 8th token (slot 0 of frame 2)
    # and 11th (slot 3): rows in any order, a request on several rows (speculative decoding).
    rows = [(a, 5), (other, 20), (b, 12 + 7), (b, 12 + 10), (a, 5 + 6)]
    check(*applied_v2(processor, context(v2_state, rows)), {0: 0, 1: None, 2: 0, 3: 3, 4: 6})

    # Slots are recycled: a request without the extra arg in a's old slot is not touched.
    v2_state.remove_request("a")
    again = admit(v2_state, processor, "plain", OTHER, prompt=5)
    assert again == a
    check(*applied_v2(processor, context(v2_state, [(again, 8), (b, 12 + 13)])), {0: None, 1: 6})


def test_v2_leaves_a_batch_without_orpheus_requests_alone(v2_state):
    processor = OrpheusSlotsV2(None, LogitsProcRequestState.from_request_state(v2_state))
    plain = admit(v2_state, processor, "plain", OTHER, prompt=4)
    logits = torch.randn(1, VOCAB_SIZE)
    assert processor.apply(logits, context(v2_state, [(plain, 6)])) is logits and torch.isfinite(logits).all()


def test_each_runner_loads_its_own_class_by_name_and_refuses_the_other():
    from vllm.v1.sample.logits_processor import _load_logitsprocs_by_fqcns
    from vllm.v1.worker.gpu.sample.logits_processor.loader import (
        _load_v2_logitsprocs_by_fqcns,
        build_custom_logits_processors_params_validator,
    )

    assert _load_v2_logitsprocs_by_fqcns([vllm_slots.V2]) == [OrpheusSlotsV2]
    build_custom_logits_processors_params_validator((vllm_slots.V2,))(ORPHEUS)  # the frontend's check passes
    with pytest.raises(ValueError, match="not a subclass"):
        _load_v2_logitsprocs_by_fqcns([vllm_slots.V1])  # why there are two classes
    assert _load_logitsprocs_by_fqcns([vllm_slots.V1]) == [OrpheusSlots]
    assert vllm_slots.processor_for(SimpleNamespace(use_v2_model_runner=True)) == vllm_slots.V2
    assert vllm_slots.processor_for(SimpleNamespace(use_v2_model_runner=False)) == vllm_slots.V1


@pytest.mark.parametrize(("triton", "expected"), [(True, vllm_slots.V2), (False, vllm_slots.V1)])
def test_the_engine_config_carries_the_processor_of_the_runner_vllm_selects(tmp_path, monkeypatch, triton, expected):
    # vLLM picks its model runner when it builds the config: V2 by default wherever Triton is present
    # (CUDA), V1 without it (this CPU build). Pretending Triton is there takes the CUDA default path.
    import vllm.config.vllm

    from benchmarks.models.orpheus import VLLM_TINY, build_lm
    from engines.orpheus.vllm_backend import VllmRunner
    from tests.engines.orpheus.conftest import settings_for

    build_lm(tmp_path / "lm", **VLLM_TINY)
    monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    monkeypatch.setattr(vllm.config.vllm, "HAS_TRITON", triton)
    settings = settings_for((tmp_path / "lm", tmp_path / "snac"), orpheus_backend="vllm")
    runner = VllmRunner(settings.orpheus, tmp_path / "lm", tokenizer=None, codec=None, max_model_len=1024)
    config = runner.engine_config()
    assert config.use_v2_model_runner is triton
    assert list(config.model_config.logits_processors) == [expected]
