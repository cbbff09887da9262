"""Prompt layout and the audio-token <-> SNAC-code mapping."""

from __future__ import annotations

import numpy as np
import pytest

from engines.orpheus import tokens as T
from tests.engines.orpheus.helpers import audio_token_id

# The non-verbal tags the fine-tuned checkpoint was trained with (canopyai/Orpheus-TTS README).
EMOTION_TAGS = ("<laugh>", "<chuckle>", "<sigh>", "<cough>", "<sniffle>", "<groan>", "<yawn>", "<gasp>")


def codebooks_to_frames(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """The inverse of :func:`tokens.frames_to_codebooks`, to check the layout round-trips."""
    n = len(c0)
    frames = np.empty((n, T.FRAME_TOKENS), dtype=np.int64)
    for codes, slots in zip((c0, c1, c2), T.CODEBOOK_SLOTS):
        frames[:, list(slots)] = np.asarray(codes).reshape(n, len(slots))
    return frames


def test_prompt_matches_training_layout(orpheus_parts):
    tokenizer = orpheus_parts.tokenizer
    ids = T.prompt_ids(tokenizer, "tara", "Hello there.")
    text_ids = tokenizer("tara: Hello there.")["input_ids"]
    assert text_ids[0] == 128000  # Llama-3's <|begin_of_text|>, added as in training
    assert ids == [128259, *text_ids, 128009, 128260, 128261, 128257]
    assert (T.START_OF_HUMAN, T.END_OF_TEXT, T.END_OF_HUMAN, T.START_OF_AI, T.START_OF_SPEECH, T.END_OF_SPEECH) == (
        128259,
        128009,
        128260,
        128261,
        128257,
        128258,
    )


@pytest.mark.parametrize("tag", EMOTION_TAGS)
def test_emotion_tags_pass_through_as_text(orpheus_parts, tag):
    tokenizer = orpheus_parts.tokenizer
    text = f"Well {tag} that is funny."
    ids = T.prompt_ids(tokenizer, "leo", text)
    assert tokenizer.decode(ids[2:-4]) == f"leo: {text}"


def test_audio_ids_cover_seven_slots_of_4096_codes():
    assert audio_token_id(0, 0) == 128266
    assert audio_token_id(6, 4095) == 128266 + 7 * 4096 - 1 < T.VOCAB_SIZE
    assert audio_token_id(3, 17) == 128266 + 3 * 4096 + 17


def test_frame_codes_accepts_code_zero_and_rejects_out_of_range():
    zeros = [audio_token_id(k, 0) for k in range(7)]
    assert T.frame_codes(zeros).tolist() == [0] * 7  # the reference's `token > 0` dropped these
    top = [audio_token_id(k, 4095) for k in range(7)]
    assert T.frame_codes(top).tolist() == [4095] * 7
    overflow = list(top)
    overflow[2] = T.AUDIO_BASE + 2 * 4096 + 4096  # code 4096: the reference's `> 4096` let it through
    assert T.frame_codes(overflow) is None
    wrong_slot = list(zeros)
    wrong_slot[1] = audio_token_id(0, 5)
    assert T.frame_codes(wrong_slot) is None
    assert T.frame_codes([*zeros[:6], T.END_OF_SPEECH]) is None
    assert T.frame_codes(zeros[:6]) is None


def test_codebook_redistribution():
    frames = np.arange(14).reshape(2, 7)
    c0, c1, c2 = T.frames_to_codebooks(frames)
    assert c0.tolist() == [0, 7]
    assert c1.tolist() == [1, 4, 8, 11]
    assert c2.tolist() == [2, 3, 5, 6, 9, 10, 12, 13]
    assert np.array_equal(codebooks_to_frames(c0, c1, c2), frames)
