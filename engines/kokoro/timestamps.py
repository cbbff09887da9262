"""Word start and end times from Kokoro's predicted durations and misaki's word tokens.

Kokoro predicts, for every input token (the phoneme symbols plus a boundary token at each end),
how many frames it lasts; a frame is 600 samples at 24 kHz (1/40 s), after ``speed`` is applied.
A word starts where its first phoneme's frames start and ends where its last phoneme's end, so the
times follow the audio exactly. Spaces and punctuation between words get their own frames and
belong to no word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engines.base import WordTiming

SAMPLES_PER_FRAME = 600
SAMPLE_RATE = 24000


def token_spans(phonemes: str, tokens: Sequence[Any], vocab: dict[str, int]) -> list[tuple[str, int, int]] | None:
    """``(word, first input id, one past the last)`` for each spoken word of a chunk.

    Input ids are counted as ``KModel`` builds them: a boundary token, then one id per phoneme
    symbol in the vocabulary (others are dropped), then a boundary token. Returns None when the
    tokens do not spell out ``phonemes`` (then no timing is better than a wrong one).
    """
    text, spans = "", []
    for token in tokens:
        start = len(text)
        text += token.phonemes or ""
        spans.append((token, start, len(text)))
        if token.whitespace:
            text += " "
    lead = len(text) - len(text.lstrip())
    if text.strip() != phonemes:
        return None
    # ids_before[p]: input ids that precede character p of the stripped phoneme string.
    ids_before = [1]
    for char in phonemes:
        ids_before.append(ids_before[-1] + (char in vocab))
    words = []
    for token, start, end in spans:
        if start == end or not any(c.isalnum() for c in token.text):
            continue  # silent, or punctuation
        first, last = ids_before[start - lead], ids_before[end - lead]
        if last > first:
            words.append((token.text, first, last))
    return words


def word_timings(
    spans: Sequence[tuple[str, int, int]], durations: Sequence[int], start_seconds: float
) -> list[WordTiming]:
    """Times of ``spans`` in a chunk whose audio starts ``start_seconds`` into the utterance."""
    frame_starts = [0]
    for frames in durations:
        frame_starts.append(frame_starts[-1] + int(frames))
    seconds_per_frame = SAMPLES_PER_FRAME / SAMPLE_RATE
    return [
        WordTiming(
            word,
            round(start_seconds + frame_starts[first] * seconds_per_frame, 4),
            round(start_seconds + frame_starts[last] * seconds_per_frame, 4),
        )
        for word, first, last in spans
    ]
