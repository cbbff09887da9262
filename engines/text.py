"""Split text into segments a model handles well, as the text arrives.

Text may come whole (an HTTP request) or in pieces (a websocket, an LLM streaming its reply). A
:class:`TextSegmenter` releases a segment as soon as it is settled: at a sentence end, or once
enough characters have gathered, cut at the most natural boundary in reach (a clause, then a
word; an unbroken run is hard-cut). Nothing is ever dropped.

Every decision depends only on the text up to the point it is made, never on how that text was
split into pieces, so feeding the input word by word releases exactly the segments that feeding
it whole does. The first segment is kept short so its audio can leave early; later ones gather
sentences up to a larger size, because fewer, longer forward passes sound more natural.

Together's ``segment`` picks the mode (:func:`session_segmenter` builds the one a session uses):

* ``sentence`` (default): as above.
* ``immediate``: the first segment is the first clause or sentence, the smallest natural chunk, so
  first audio leaves as early as possible; later text as for ``sentence``. For text arriving in
  pieces while someone listens, every piece is released up to its last word boundary at once
  (``eager``): that, by design, depends on how the text arrived.
* ``never``: the whole input is one segment, cut only where the model's own input limit
  (``never_chars``) forces it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engines.base import SegmentMode, SessionParams

# A sentence ends at . ! ? … followed by closing quotes/brackets and whitespace, right after a CJK
# full stop, or at a line break. The whitespace must have arrived: "3." may still become "3.5".
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s+|[。！？][\"')\]」』]*(?=[^\"')\]」』])|\n+")
_CLAUSE_END = re.compile(r"[,;:，；：—–][\"')\]]*\s+")
# Whichever comes first: what ``immediate`` cuts its first segment at.
_FIRST_BREAK = re.compile(f"{_SENTENCE_END.pattern}|{_CLAUSE_END.pattern}")
_SPACE = re.compile(r"\s+")

#: Longest ``never`` segment when an engine names no input limit of its own.
NEVER_CHARS = 4096


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
    ``clear`` forgets text not yet released. ``never_chars`` is the model's input limit, used by
    :func:`session_segmenter` for ``segment: never``.
    """

    def __init__(
        self,
        *,
        first_chars: int = 120,
        max_chars: int = 400,
        min_chars: int = 100,
        mode: SegmentMode = "sentence",
        eager: bool = False,
        never_chars: int | None = None,
    ) -> None:
        self.mode = mode
        self.eager = eager
        self.max_chars = max_chars
        self.first_chars = max_chars if mode == "never" else min(first_chars, max_chars)
        self.min_chars = min(min_chars, max_chars)
        self.never_chars = never_chars or NEVER_CHARS
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
        if self.eager:
            out.extend(self._release_words())
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
    def _first(self) -> bool:
        return self.released == 0 and not self._group

    @property
    def _limit(self) -> int:
        return self.first_chars if self._first else self.max_chars

    def _next_piece(self) -> str | None:
        """Cut the next settled piece off the buffer, or None if the buffer must wait for more text."""
        self._buffer = self._buffer.lstrip()
        if not self._buffer:
            return None
        limit = self._limit
        if self.mode != "never":
            breaks = _FIRST_BREAK if self.mode == "immediate" and self._first else _SENTENCE_END
            sentence = breaks.search(self._buffer)
            if sentence is not None and len(self._buffer[: sentence.end()].strip()) <= limit:
                return self._cut(sentence.end())
        # No sentence end within reach. Decide only once the character after the limit is known,
        # so that the cut is the same however the text arrived.
        if len(self._buffer) < limit + 2:
            return None
        head = self._buffer[: limit + 1]
        cut = _last_cut(_CLAUSE_END, head, limit) or _last_cut(_SPACE, head, limit)
        return self._cut(cut if cut > 0 else limit)

    def _release_words(self) -> list[str]:
        """``eager``: everything up to the buffer's last word boundary goes now, whatever its length."""
        out = []
        cut = max((m.start() for m in _SPACE.finditer(self._buffer)), default=0)
        if cut > 0 and self._buffer[:cut].strip():
            out.extend(self._add(self._cut(cut)))
        if self._group:
            out.append(self._release())
        return out

    def _cut(self, end: int) -> str:
        piece, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
        return piece

    def _add(self, piece: str) -> list[str]:
        if self._first or self.mode == "never":
            self._group = piece  # one piece, released at once: fast first audio (or the model's limit)
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


def session_segmenter(params: SessionParams, engine: TextSegmenter) -> TextSegmenter:
    """The segmenter of one session: the engine's own limits, in the session's ``segment`` mode.

    Text arriving while someone listens (``max_partial_chars`` set) releases each sentence the
    moment it ends, and unfinished text at ``max_partial_chars`` (within the engine's longest
    segment); with ``immediate``, each piece up to its last word boundary at once.
    """
    if params.segment == "never":
        return TextSegmenter(mode="never", max_chars=engine.never_chars, never_chars=engine.never_chars)
    if params.max_partial_chars is None:
        if params.segment == engine.mode:
            return engine
        return TextSegmenter(
            first_chars=engine.first_chars,
            max_chars=engine.max_chars,
            min_chars=engine.min_chars,
            mode=params.segment,
            never_chars=engine.never_chars,
        )
    limit = max(1, min(params.max_partial_chars, engine.max_chars))
    return TextSegmenter(first_chars=limit, max_chars=limit, min_chars=1, eager=params.segment == "immediate")


def segment_text(
    text: str, *, first_chars: int = 120, max_chars: int = 400, min_chars: int = 100, mode: SegmentMode = "sentence"
) -> list[str]:
    """All segments of a complete ``text`` (what feeding it in any pieces, then finishing, gives).

    Joining the segments with single spaces gives back the input with whitespace normalised.
    """
    segmenter = TextSegmenter(first_chars=first_chars, max_chars=max_chars, min_chars=min_chars, mode=mode)
    return segmenter.feed(text) + segmenter.finish()
