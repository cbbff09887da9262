"""Split long input into segments a model handles well, at the most natural boundary available.

Sentences first, then clauses, then words; nothing is ever dropped. The first segment is kept
short so its audio can leave early; later segments are grouped up to a larger target, because
fewer, longer forward passes sound more natural and use an accelerator better.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? … (and CJK 。！？) followed by space, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+|(?<=[。！？])|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:，；：—–])\s*")


def _pieces(text: str, pattern: re.Pattern[str]) -> list[str]:
    return [p.strip() for p in pattern.split(text) if p and p.strip()]


def _split_words(text: str, max_chars: int) -> list[str]:
    out: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > max_chars:  # a single enormous "word" (URL, CJK run): hard cut
            if current:
                out.append(current)
                current = ""
            out.append(word[:max_chars])
            word = word[max_chars:]
        if current and len(current) + 1 + len(word) > max_chars:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        out.append(current)
    return out


def _bounded(sentence: str, max_chars: int) -> list[str]:
    """Break one sentence into pieces of at most ``max_chars``: clauses, then words."""
    if len(sentence) <= max_chars:
        return [sentence]
    out: list[str] = []
    for clause in _pieces(sentence, _CLAUSE_END):
        out.extend([clause] if len(clause) <= max_chars else _split_words(clause, max_chars))
    return _group(out, max_chars)


def _group(pieces: list[str], max_chars: int) -> list[str]:
    out: list[str] = []
    for piece in pieces:
        if out and len(out[-1]) + 1 + len(piece) <= max_chars:
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def split_sentences(text: str) -> list[str]:
    return _pieces(text, _SENTENCE_END)


def segment_text(text: str, *, first_chars: int = 120, max_chars: int = 400) -> list[str]:
    """Split ``text`` into segments: the first at most ``first_chars``, the rest at most ``max_chars``.

    Joining the segments with single spaces gives back the input with whitespace normalised.
    """
    first_chars = min(first_chars, max_chars)
    sentences = split_sentences(text)
    if not sentences:
        return []
    head = _bounded(sentences[0], first_chars)
    rest_pieces = head[1:] + [p for s in sentences[1:] for p in _bounded(s, max_chars)]
    return [head[0], *_group(rest_pieces, max_chars)]
