"""Orpheus's token layout: the prompt it was trained on and the audio tokens it answers with.

Source: canopyai/Orpheus-TTS (commit 835ac7c). The fine-tuning data is
``[start_of_human] + tokenizer("{voice}: {text}") + [end_of_text, end_of_human]
+ [start_of_ai, start_of_speech] + audio + [end_of_speech, end_of_ai]`` and
``orpheus_tts/engine_class.py::_format_prompt`` builds the same prompt (up to start_of_speech) at
inference. ``tokenizer(...)`` adds Llama-3's ``<|begin_of_text|>``, as in training; we call the
tokenizer the same way so whatever it adds matches. The reference decoder
(``orpheus_tts/decoder.py``) maps ``<custom_token_N>`` to ``N - 10 - (i % 7) * 4096``, i.e. audio id
``128266 + k*4096 + code`` for slot ``k`` of a 7-token frame, and redistributes a frame to SNAC's
codebooks as ``c0=[f0]``, ``c1=[f1, f4]``, ``c2=[f2, f3, f5, f6]``.

Two bugs of that reference are avoided here: it treats code 0 as invalid (``token > 0``) and
accepts code 4096 (``> 4096``); valid codes are exactly ``0 <= code < 4096``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# <custom_token_N> has id 128256 + N.
START_OF_SPEECH = 128257  # <custom_token_1>
END_OF_SPEECH = 128258  # <custom_token_2>: generation stops here
START_OF_HUMAN = 128259  # <custom_token_3>
END_OF_HUMAN = 128260  # <custom_token_4>
START_OF_AI = 128261  # <custom_token_5>
END_OF_TEXT = 128009  # Llama-3 <|eot_id|>
AUDIO_BASE = 128266  # <custom_token_10>: slot 0, code 0
CODEBOOK_SIZE = 4096
FRAME_TOKENS = 7
AUDIO_TOKENS = FRAME_TOKENS * CODEBOOK_SIZE  # 28,672 ids, 128266 .. 156937
VOCAB_SIZE = 156940  # the checkpoint's embedding rows
SAMPLE_RATE = 24000  # SNAC 24 kHz
SAMPLES_PER_FRAME = 2048  # SNAC 24 kHz: hop 512 x the coarsest codebook's stride 4

# Slots of a frame that feed each SNAC codebook, in time order within the frame.
CODEBOOK_SLOTS: tuple[tuple[int, ...], ...] = ((0,), (1, 4), (2, 3, 5, 6))


def prompt_ids(tokenizer: Any, voice: str, text: str) -> list[int]:
    """Token ids of the prompt for ``text`` in ``voice``, ending where the model starts speaking.

    Emotion tags such as ``<laugh>`` are plain text to the tokenizer, as they were in training, so
    they pass through untouched.
    """
    text_ids = list(tokenizer(f"{voice}: {text}", add_special_tokens=True)["input_ids"])
    return [START_OF_HUMAN, *text_ids, END_OF_TEXT, END_OF_HUMAN, START_OF_AI, START_OF_SPEECH]


def frame_codes(tokens: Sequence[int]) -> np.ndarray | None:
    """The 7 codes of one frame of token ids, or None when any token is not audio of its slot.

    An invalid token spoils only its own frame: the caller drops it and the next frame, which
    starts at the next multiple of 7 tokens, is unaffected.
    """
    if len(tokens) != FRAME_TOKENS:
        return None
    codes = np.asarray(tokens, dtype=np.int64) - AUDIO_BASE - np.arange(FRAME_TOKENS) * CODEBOOK_SIZE
    if np.any(codes < 0) or np.any(codes >= CODEBOOK_SIZE):
        return None
    return codes


def frames_to_codebooks(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Redistribute ``[n, 7]`` frame codes to SNAC's three codebooks of n, 2n and 4n codes."""
    frames = np.asarray(frames, dtype=np.int64).reshape(-1, FRAME_TOKENS)
    return tuple(frames[:, list(slots)].reshape(-1) for slots in CODEBOOK_SLOTS)  # type: ignore[return-value]
