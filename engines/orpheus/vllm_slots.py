"""vLLM logits processors: each Orpheus sequence may only say the next frame slot's 4,096 codes.

Token ``n`` of a sequence's output is slot ``n % 7`` of its frame; this processor narrows every step
to that slot's codes and allows end of speech only at a frame boundary, so no frame is ever invalid
or cut short (and it is the whole vocabulary restriction: requests carry no ``allowed_token_ids``,
which the V2 runner caps at 1,024 ids). Only requests whose ``extra_args`` carry ``orpheus_slots``
are touched. vLLM loads the class by name in its engine process and, to validate requests, in the
frontend too.

vLLM has two model runners with different processor interfaces, so there are two classes over one
mask table: :class:`OrpheusSlotsV2` for the V2 runner (``vllm.v1.worker.gpu``; vLLM >= 0.32 uses it
by default wherever Triton is present, i.e. on CUDA) and :class:`OrpheusSlots` for the V1 runner (the
CPU build, or ``VLLM_USE_V2_MODEL_RUNNER=0``). :func:`processor_for` names the one a config needs.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality
from vllm.v1.worker.gpu.sample.logits_processor import LogitsContext, LogitsProcRequestState
from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor as LogitsProcessorV2

from engines.orpheus.tokens import AUDIO_BASE, CODEBOOK_SIZE, END_OF_SPEECH, FRAME_TOKENS

EXTRA_ARG = "orpheus_slots"
V1 = "engines.orpheus.vllm_slots:OrpheusSlots"
V2 = "engines.orpheus.vllm_slots:OrpheusSlotsV2"


def processor_for(vllm_config: Any) -> str:
    """The processor (by name, as vLLM loads it) for the model runner ``vllm_config`` selects."""
    return V2 if vllm_config.use_v2_model_runner else V1


def blocked_table(vocab: int, device: torch.device | str) -> torch.Tensor:
    """``[FRAME_TOKENS + 1, vocab]`` bool: row k blocks every id slot k may not say; the last row blocks nothing."""
    blocked = torch.ones(FRAME_TOKENS + 1, vocab, dtype=torch.bool)
    for slot in range(FRAME_TOKENS):
        start = AUDIO_BASE + slot * CODEBOOK_SIZE
        blocked[slot, start : start + CODEBOOK_SIZE] = False
    blocked[0, END_OF_SPEECH] = False
    blocked[FRAME_TOKENS] = False  # rows of requests that are not Orpheus's
    return blocked.to(device)


def wants_slots(params: Any) -> bool:
    return params is not None and bool((params.extra_args or {}).get(EXTRA_ARG))


class OrpheusSlots(LogitsProcessor):
    """The V1 runner's interface: batch rows move, so the processor follows ``update_state``."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.device = device
        self.blocked = blocked_table(vllm_config.model_config.get_vocab_size(), device)
        self.outputs: dict[int, list[int]] = {}  # batch row -> the request's live output token list

    def is_argmax_invariant(self) -> bool:
        return False  # it changes which token is most likely

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None:
            return
        # vLLM's order: removed, then added, then moved (an added or moved row may replace another).
        for index in batch_update.removed:
            self.outputs.pop(index, None)
        for index, params, _prompt, output in batch_update.added:
            if wants_slots(params):
                self.outputs[index] = output
            else:
                self.outputs.pop(index, None)
        for source, target, direction in batch_update.moved:
            moving = self.outputs.pop(source, None)
            other = self.outputs.pop(target, None)
            if moving is not None:
                self.outputs[target] = moving
            if direction == MoveDirectionality.SWAP and other is not None:
                self.outputs[source] = other

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.outputs:
            return logits
        rows = list(self.outputs)
        slots = [len(self.outputs[row]) % FRAME_TOKENS for row in rows]
        index = torch.tensor(rows, device=logits.device)
        mask = self.blocked[torch.tensor(slots, device=self.device)].to(logits.device)
        logits[index] = logits[index].masked_fill(mask[:, : logits.shape[1]], float("-inf"))
        return logits


class OrpheusSlotsV2(LogitsProcessorV2):
    """The V2 runner's interface: state per request slot, rows mapped to slots at each step.

    A row's output position comes from the device (``pos + 1 - prompt_len``: the tokens before the one
    being sampled, minus the prompt), so ``apply`` never syncs with the host and also holds under
    speculative decoding (several rows per request) and after preemption (prefill past the prompt).
    """

    def __init__(self, vllm_config: Any, req_states: LogitsProcRequestState) -> None:
        from vllm.v1.worker.gpu.buffer_utils import UvaBackedTensor  # engine process only (Triton)

        self.req_states = req_states
        self.blocked = blocked_table(req_states.vocab_size, req_states.device)
        self.enabled = UvaBackedTensor(req_states.max_num_reqs, dtype=torch.int32)  # per slot: 1 = ours

    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        ours = wants_slots(sampling_params)
        self.enabled.np[req_idx] = int(ours)  # a recycled slot is overwritten either way
        return ours

    def apply_staged_writes(self) -> None:
        self.enabled.copy_to_uva()

    def apply(self, logits: torch.Tensor, ctx: LogitsContext) -> torch.Tensor:
        if not self.enabled.np[ctx.idx_mapping_np].any():
            return logits  # no Orpheus request in this step: no kernel
        slots = ctx.expanded_idx_mapping.long()
        produced = ctx.pos.long() + 1 - self.req_states.prompt_len.gpu[slots].long()
        slot = torch.remainder(produced, FRAME_TOKENS)
        row = torch.where(self.enabled.gpu[slots] != 0, slot, FRAME_TOKENS)  # others: the row blocking nothing
        logits.masked_fill_(self.blocked[row][:, : logits.shape[1]], float("-inf"))
        return logits
