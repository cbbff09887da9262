"""Pronunciation dictionaries: Together's ``extra_params.pronunciation_dict``, and the server's own.

An entry is ``"<source>/<replacement>"`` (split at the first slash): every whole-word,
case-insensitive occurrence of ``source`` in the input is spoken as ``replacement``, longest
source first ("New York" before "New"). A replacement written as ``/phonemes/`` is IPA: Kokoro's
English G2P takes it as the word's phonemes through misaki's own markup (``[word](/phonemes/)``);
engines that take only text leave such words as written. The server-wide file
(``TTS_PRONUNCIATION_DICT``, one entry per line) applies to every request; a request's entries
win for the same source (:func:`merge`).

Words are replaced before synthesis, one segment at a time, so a source never spans two segments.
Word timestamps still name the input's own words: a :class:`WordRestorer` follows the model's
words through the rewritten text and folds those of one replacement back into the source word.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from engines.base import WordTiming
from engines.errors import InvalidRequest

PARAM = "extra_params.pronunciation_dict"
MAX_ENTRIES = 10_000
MAX_ENTRY_CHARS = 512
Entry = tuple[str, str]  # (source, replacement)
T = TypeVar("T")


# -- parsing ----------------------------------------------------------------------------------
def parse_entry(raw: object) -> Entry:
    """``"source/replacement"`` -> ``(source, replacement)``; ValueError says what is wrong."""
    if not isinstance(raw, str):
        raise ValueError(f"each entry must be a string '<source>/<replacement>', got {type(raw).__name__}")
    if len(raw) > MAX_ENTRY_CHARS:
        raise ValueError(f"an entry is longer than {MAX_ENTRY_CHARS} characters")
    source, slash, replacement = raw.partition("/")
    source, replacement = source.strip(), replacement.strip()
    if not slash or not source or not replacement or replacement.strip("/").strip() == "":
        raise ValueError(f"entry {raw!r} is not '<source>/<replacement>' (both non-empty)")
    if not any(c.isalnum() for c in source):
        raise ValueError(f"entry {raw!r}: the source must contain a letter or digit")
    return source, replacement


def parse_pronunciation_dict(value: object, *, param: str = PARAM) -> tuple[Entry, ...]:
    """Together's ``pronunciation_dict`` (a list of entry strings; None means none). A malformed
    value is an :class:`InvalidRequest` naming ``param`` (a 400 in Together's error shape)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidRequest(f"{param} must be a list of '<source>/<replacement>' strings.", param=param)
    if len(value) > MAX_ENTRIES:
        raise InvalidRequest(f"{param} has {len(value)} entries; at most {MAX_ENTRIES} are accepted.", param=param)
    try:
        return tuple(parse_entry(raw) for raw in value)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid {param}: {exc}.", param=param) from None


def from_extra_params(extra_params: dict[str, Any] | None) -> tuple[Entry, ...]:
    """The entries of a request's (or a websocket session's) ``extra_params``."""
    if not extra_params:
        return ()
    return parse_pronunciation_dict(extra_params.get("pronunciation_dict"))


def load_file(path: str | Path) -> tuple[Entry, ...]:
    """The server-wide dictionary: one entry per line; blank lines and ``#`` comments are skipped."""
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entries.append(parse_entry(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return tuple(entries)


def merge(*dictionaries: Iterable[Entry]) -> tuple[Entry, ...]:
    """One dictionary from several; for the same source (any case) a later one wins."""
    merged: dict[str, Entry] = {}
    for dictionary in dictionaries:
        for source, replacement in dictionary:
            merged.pop(_key(source), None)  # re-insert: the winner keeps its own spelling
            merged[_key(source)] = (source, replacement)
    return tuple(merged.values())


def _key(source: str) -> str:
    return " ".join(source.split()).lower()


def is_phonemes(replacement: str) -> bool:
    return len(replacement) > 2 and replacement.startswith("/") and replacement.endswith("/")


# -- rewriting --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """Where a replacement sits in rewritten text, and the input's own words it stands for."""

    start: int
    end: int
    source: str


@dataclass(frozen=True)
class Rewritten:
    text: str
    regions: tuple[Region, ...] = ()


class Pronouncer:
    """Applies one dictionary. ``phonemes``: the engine takes ``/IPA/`` replacements (Kokoro English)."""

    def __init__(self, entries: Sequence[Entry], *, phonemes: bool = False) -> None:
        usable = [(s, r) for s, r in entries if phonemes or not is_phonemes(r)]
        self._replacements = {_key(s): r for s, r in usable}
        sources = sorted(self._replacements, key=len, reverse=True)  # longest first
        alternatives = "|".join(r"\s+".join(map(re.escape, s.split())) for s in sources)
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if sources else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def rewrite(self, text: str) -> Rewritten:
        if self._pattern is None:
            return Rewritten(text)
        parts: list[str] = []
        regions: list[Region] = []
        done = length = 0
        for match in self._pattern.finditer(text):
            parts.append(text[done : match.start()])
            length += match.start() - done
            source = match.group(0)
            replacement = self._replacements[_key(source)]
            if is_phonemes(replacement):  # misaki's markup: the word, spoken as these phonemes
                replacement = f"[{source.replace(']', '')}]({replacement.replace(')', '')})"
            regions.append(Region(length, length + len(replacement), source))
            parts.append(replacement)
            length += len(replacement)
            done = match.end()
        parts.append(text[done:])
        return Rewritten("".join(parts), tuple(regions))


# -- word timestamps back to the input's words ------------------------------------------------
class WordRestorer(Generic[T]):
    """Names the model's timed words by the input's words, across the texts of one session.

    ``add`` each rewritten text as it goes to the model, in order; ``feed`` the model's words (any
    item type: ``word_of`` reads its word, ``fold`` makes one item of a source word and the items
    that speak its replacement). Words of a replacement still being spoken are held back until
    the next ``feed`` or ``flush``. A word not found in the text keeps its own name.
    """

    def __init__(self, word_of: Callable[[T], str], fold: Callable[[str, list[T]], T]) -> None:
        self._word_of = word_of
        self._fold = fold
        self._text = ""
        self._regions: list[Region] = []
        self._cursor = 0
        self._open: tuple[Region, list[T]] | None = None  # a replacement whose words are still coming

    def add(self, rewritten: Rewritten) -> None:
        offset = len(self._text) + (1 if self._text else 0)
        self._text = f"{self._text} {rewritten.text}" if self._text else rewritten.text
        self._regions += [Region(r.start + offset, r.end + offset, r.source) for r in rewritten.regions]

    def feed(self, items: Iterable[T], *, final: bool = False) -> list[T]:
        out: list[T] = []
        for item in items:
            region = self._locate(self._word_of(item))
            if self._open is not None and self._open[0] is not region:
                out.append(self._close())
            if region is None:
                out.append(item)
            elif self._open is None:
                self._open = (region, [item])
            else:
                self._open[1].append(item)
        if self._open is not None and (final or not self._still_speaking(self._open[0])):
            out.append(self._close())
        return out

    def flush(self) -> list[T]:
        return [self._close()] if self._open is not None else []

    def _close(self) -> T:
        region, items = self._open  # type: ignore[misc]
        self._open = None
        return self._fold(region.source, items)

    def _locate(self, word: str) -> Region | None:
        word = word.strip()
        if not word:
            return None
        match = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE).search(self._text, self._cursor)
        if match is None:
            return None
        self._cursor = match.end()
        return next((r for r in self._regions if r.start <= match.start() < r.end), None)

    def _still_speaking(self, region: Region) -> bool:
        """Whether words of ``region``'s replacement are left after the last word found."""
        return self._cursor < region.end and any(c.isalnum() for c in self._text[self._cursor : region.end])


def timing_restorer(spoken: Rewritten | None = None) -> WordRestorer[WordTiming] | None:
    """A restorer of :class:`WordTiming` items, given the first text (None: no replacement in it)."""
    if spoken is not None and not spoken.regions:
        return None
    restorer: WordRestorer[WordTiming] = WordRestorer(
        lambda w: w.word, lambda word, items: WordTiming(word, items[0].start, items[-1].end)
    )
    if spoken is not None:
        restorer.add(spoken)
    return restorer
