import importlib.util

import pytest

from engines.kokoro.g2p import MAX_PHONEMES, Phonemizer, lang_code_for, spacy_model_alias
from server.errors import UnsupportedLanguage


@pytest.fixture(scope="module")
def phonemizer():
    return Phonemizer("hexgrad/Kokoro-82M")


def test_english_accent_follows_the_voice():
    assert lang_code_for("en", "a") == "a"
    assert lang_code_for("en", "b") == "b"
    assert lang_code_for("en", "j") == "a"  # a Japanese voice reading English: American G2P
    assert lang_code_for("es", "a") == "e"


def test_english_phonemes_match_kpipeline(phonemizer):
    from kokoro import KPipeline

    text = "The quick brown fox jumps over the lazy dog."
    with spacy_model_alias():
        pipeline = KPipeline(lang_code="a", repo_id="hexgrad/Kokoro-82M", model=False)
    reference = [r.phonemes for r in pipeline(text)]
    assert phonemizer.phonemize(text, "a") == reference
    assert phonemizer.phonemize("tomato", "a") != phonemizer.phonemize("tomato", "b")


def test_espeak_languages_work_offline(phonemizer):
    assert phonemizer.phonemize("Hola, ¿cómo estás?", "e")[0]
    assert phonemizer.phonemize("Bonjour tout le monde.", "f")[0]


@pytest.mark.parametrize("lang", ["a", "e"])
def test_long_text_is_split_never_cut(phonemizer, lang):
    words = ("alpha beta gamma delta epsilon zeta eta theta iota kappa " * 30).split()
    text = " ".join(words)  # no punctuation at all: the hardest case
    chunks = phonemizer.phonemize(text, lang)
    assert len(chunks) > 1 and all(0 < len(c) <= MAX_PHONEMES for c in chunks)
    whole = sum(len(phonemizer.phonemize(" ".join(words[i : i + 10]), lang)[0]) for i in range(0, len(words), 10))
    assert sum(len(c) for c in chunks) >= 0.9 * whole  # nothing silently dropped


def test_missing_g2p_extra_is_a_clear_unsupported_language(phonemizer):
    if importlib.util.find_spec("pyopenjtalk") is not None:
        assert phonemizer.phonemize("こんにちは", "j")
        return
    with pytest.raises(UnsupportedLanguage, match="kokoro-cjk"):
        phonemizer.pipeline("j")
