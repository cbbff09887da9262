"""A vLLM (V1) logits processor: each Orpheus sequence may only say the next frame slot's 4,096 codes.

``allowed_token_ids`` already limits a request to audio ids and end of speech; this processor
narrows every step to the one slot that comes next (token ``n`` of a sequence is slot ``n % 7``)
and allows end of speech only at a frame boundary, so no frame is ever invalid or cut short. vLLM
loads it by name in its engine process (``logits_processors=["engines.orpheus.vllm_slots:OrpheusSlots"]``)
and runs it for every request; only requests whose ``extra_args`` carry ``orpheus_slots`` are touched.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from engines.orpheus.tokens import AUDIO_BASE, CODEBOOK_SIZE, END_OF_SPEECH, FRAME_TOKENS

EXTRA_ARG = "orpheus_slots"


class OrpheusSlots(LogitsProcessor):
    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        vocab = vllm_config.model_config.get_vocab_size()
        self.device = device
        # blocked[k]: True for every id that may not come in slot k.
        blocked = torch.ones(FRAME_TOKENS, vocab, dtype=torch.bool)
        for slot in range(FRAME_TOKENS):
            start = AUDIO_BASE + slot * CODEBOOK_SIZE
            blocked[slot, start : start + CODEBOOK_SIZE] = False
        blocked[0, END_OF_SPEECH] = False
        self.blocked = blocked.to(device)
        self.outputs: dict[int, list[int]] = {}  # batch row -> the request's live output token list

    def is_argmax_invariant(self) -> bool:
        return False  # it changes which token is most likely

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.outputs.pop(index, None)
        for index, params, _prompt, output in batch_update.added:
            if params is not None and (params.extra_args or {}).get(EXTRA_ARG):
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
