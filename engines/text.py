"""Split text into segments a model handles well, as the text arrives.

Text may come whole (an HTTP request) or in pieces (a websocket, an LLM streaming its reply). A
:class:`TextSegmenter` releases a segment as soon as it is settled: at a sentence end, or once
enough characters have gathered, cut at the most natural boundary in reach (a clause, then a
word; an unbroken run is hard-cut). Nothing is ever dropped.

Every decision depends only on the text up to the point it is made, never on how that text was
split into pieces, so feeding the input word by word releases exactly the segments that feeding
it whole does. The first segment is kept short so its audio can leave early; later ones gather
sentences up to a larger size, because fewer, longer forward passes sound more natural.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? … followed by closing quotes/brackets and whitespace, right after a CJK
# full stop, or at a line break. The whitespace must have arrived: "3." may still become "3.5".
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s+|[。！？][\"')\]」』]*(?=[^\"')\]」』])|\n+")
_CLAUSE_END = re.compile(r"[,;:，；：—–][\"')\]]*\s+")
_SPACE = re.compile(r"\s+")


def split_sentences(text: str) -> list[str]:
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def _last_cut(pattern: re.Pattern[str], head: str, limit: int) -> int:
    """End of the last ``pattern`` match in ``head`` that leaves a piece of at most ``limit`` chars, else 0."""
    ends = [m.end() for m in pattern.finditer(head) if len(head[: m.start() + 1].strip()) <= limit]
    return ends[-1] if ends else 0


class TextSegmenter:
    """Incremental segmentation; see the module docstring.

    ``feed`` returns the segments the new text settled, ``finish`` the rest (end of input), and
    ``clear`` forgets text not yet released.
    """

    def __init__(self, *, first_chars: int = 120, max_chars: int = 400, min_chars: int = 100) -> None:
        self.first_chars = min(first_chars, max_chars)
        self.max_chars = max_chars
        self.min_chars = min(min_chars, max_chars)
        self._buffer = ""  # text not yet cut into pieces
        self._group = ""  # whole pieces waiting to be released together
        self.released = 0  # segments released so far

    @property
    def pending(self) -> str:
        """Text fed but not yet released."""
        return " ".join(p for p in (self._group, self._buffer.strip()) if p)

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        while (piece := self._next_piece()) is not None:
            out.extend(self._add(piece))
        return out

    def finish(self) -> list[str]:
        out = self.feed("")
        tail = self._buffer.strip()
        self._buffer = ""
        if tail:
            out.extend(self._add(tail))
        if self._group:
            out.append(self._release())
        return out

    def clear(self) -> None:
        self._buffer = self._group = ""

    # -- internals ----------------------------------------------------------------------------
    @property
    def _limit(self) -> int:
        return self.first_chars if self.released == 0 and not self._group else self.max_chars

    def _next_piece(self) -> str | None:
        """Cut the next settled piece off the buffer, or None if the buffer must wait for more text."""
        self._buffer = self._buffer.lstrip()
        if not self._buffer:
            return None
        limit = self._limit
        sentence = _SENTENCE_END.search(self._buffer)
        if sentence is not None and len(self._buffer[: sentence.end()].strip()) <= limit:
            return self._cut(sentence.end())
        # No sentence end within reach. Decide only once the character after the limit is known,
        # so that the cut is the same however the text arrived.
        if len(self._buffer) < limit + 2:
            return None
        head = self._buffer[: limit + 1]
        cut = _last_cut(_CLAUSE_END, head, limit) or _last_cut(_SPACE, head, limit)
        return self._cut(cut if cut > 0 else limit)

    def _cut(self, end: int) -> str:
        piece, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
        return piece

    def _add(self, piece: str) -> list[str]:
        if self.released == 0 and not self._group:
            self._group = piece  # the first segment is one piece, released at once: fast first audio
            return [self._release()]
        out = []
        if self._group and len(self._group) + 1 + len(piece) > self.max_chars:
            out.append(self._release())
        self._group = f"{self._group} {piece}" if self._group else piece
        if len(self._group) >= self.min_chars:
            out.append(self._release())
        return out

    def _release(self) -> str:
        segment, self._group = self._group, ""
        self.released += 1
        return segment


def segment_text(text: str, *, first_chars: int = 120, max_chars: int = 400, min_chars: int = 100) -> list[str]:
    """All segments of a complete ``text`` (what feeding it in any pieces, then finishing, gives).

    Joining the segments with single spaces gives back the input with whitespace normalised.
    """
    segmenter = TextSegmenter(first_chars=first_chars, max_chars=max_chars, min_chars=min_chars)
    return segmenter.feed(text) + segmenter.finish()
