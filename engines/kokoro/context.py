"""The text around a chunk, read by Kokoro's duration predictor but not spoken.

The server cuts a request into chunks (a short first one for fast first audio). Alone, Kokoro speaks
a sentence a few percent slower than the same sentence inside a paragraph, spread over every phoneme
(``benchmarks/results/kokoro-segment-durations/``): ALBERT and the duration LSTM read the whole input.
So a chunk is fed with the chunks before it (up to ALBERT's context) and the one after it, when that
is already phonemized, joined by spaces as one utterance has them; the batched front predicts
durations over all of it and keeps the chunk's own tokens (``ForwardItem.keep``). Measured there,
the chunks then last within ~1% of the paragraph spoken whole (2-4% longer without).

The chunk's tokens keep their usual layout, ``[leading, phonemes..., trailing]``, after ``warm``
tokens of the earlier text: the leading token is the space after the earlier text (or the boundary
token when there is none) and the trailing one the space before the later text (or the boundary
token). The join trim (``joins.py``) cuts the warm tokens' audio and word timings skip them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BOUNDARY = 0  # Kokoro's start/end token
# Tokens of the earlier text the decoder also runs (their audio is cut off at the join): its convolutions
# then start the chunk warmed up on what was said before, as inside one utterance, not from nothing
# right at the join's short pause (where an onset came out garbled: "our server" heard as "silver").
WARM_TOKENS = 8
# Of those tokens' frames, the decoder runs only the last ``WARM_FRAMES`` (25 ms each): the onset needs
# a few frames of what came before, and every further frame is decoded only to be cut off. Against the
# chunk decoded after all the earlier text, the first second's log spectrum differs about as much with
# 12 frames as with the 8 whole tokens (~38 frames), and half as much as with none (10 joins:
# ``benchmarks/results/kokoro-cpu-defaults/``, ``python -m benchmarks.kokoro_warm_frames``).
WARM_FRAMES = 12


@dataclass(frozen=True)
class ContextTokens:
    input_ids: list[int]  # boundary, left context, space, the chunk, space, right context, boundary
    keep: tuple[int, int]  # ``warm`` tokens, the chunk's leading token, its phonemes and its trailing token
    warm: int  # tokens of the earlier text decoded before the chunk's, then cut off
    left: bool  # there is text before the chunk
    right: bool  # there is text after it
    phonemes: int  # tokens between the boundaries: what picks the voice's style row, as for any input


def token_ids(phonemes: str, vocab: Mapping[str, int]) -> list[int]:
    return [vocab[c] for c in phonemes if c in vocab]


def with_context(
    chunk: str, before: Sequence[str], after: str | None, vocab: Mapping[str, int], max_tokens: int
) -> ContextTokens:
    """``chunk``'s phonemes with the phonemes ``before`` it (oldest first) and ``after`` it as context.

    ``max_tokens`` bounds the whole input (ALBERT's context): the earlier text gives way first, from
    its start, at a space, then the later text.
    """
    own = token_ids(chunk, vocab)
    space = vocab[" "]
    right = token_ids(after, vocab) if after else []
    if 4 + len(own) + len(right) > max_tokens:
        right = []
    left = token_ids(" ".join(before), vocab)
    room = max_tokens - (2 + len(own) + (1 + len(right) if right else 0)) - 1  # one for the space before
    if len(left) > room:
        left = left[len(left) - room :] if room > 0 else []
        left = left[left.index(space) + 1 :] if space in left else []  # start at a word
    ids = [BOUNDARY]
    if left:
        ids += [*left, space]
    lead = len(ids) - 1  # the space before the chunk, or the boundary
    ids += own
    if right:
        ids += [space, *right]
    ids.append(BOUNDARY)
    trail = lead + 1 + len(own)  # the space after the chunk, or the boundary
    warm = min(WARM_TOKENS, len(left))
    return ContextTokens(ids, (lead - warm, trail + 1), warm, bool(left), bool(right), len(ids) - 2)
