import re

import pytest

from engines.text import TextSegmenter, segment_text, split_sentences

LONG = (
    "The quick brown fox jumps over the lazy dog. It was a bright cold day in April, and the clocks "
    "were striking thirteen! Was it? Yes; it was, and nobody, not even the mayor, could explain why "
    "the bells kept ringing through the night while the town slept on."
)


def normalise(text: str) -> str:
    return " ".join(text.split())


def test_sentences_split_at_terminal_punctuation_and_newlines():
    assert split_sentences("Hi there. How are you?\nFine!") == ["Hi there.", "How are you?", "Fine!"]
    assert split_sentences("你好。再见！") == ["你好。", "再见！"]


@pytest.mark.parametrize("first,most", [(20, 50), (60, 120), (120, 400)])
def test_segments_respect_limits_and_lose_nothing(first, most):
    segments = segment_text(LONG, first_chars=first, max_chars=most)
    assert len(segments[0]) <= first
    assert all(len(s) <= most for s in segments)
    assert normalise(" ".join(segments)) == normalise(LONG)


def test_first_segment_is_short_for_fast_first_audio():
    segments = segment_text(LONG, first_chars=50, max_chars=400)
    assert segments[0] == "The quick brown fox jumps over the lazy dog."
    assert len(segments) == 2  # the rest is grouped into one long segment


def test_long_sentence_splits_at_clauses_before_words():
    sentence = "one two three, four five six, seven eight nine, ten eleven twelve"
    segments = segment_text(sentence, first_chars=30, max_chars=30)
    assert segments == ["one two three, four five six,", "seven eight nine,", "ten eleven twelve"]


def test_unbroken_text_is_hard_cut_but_kept():
    blob = "x" * 95
    segments = segment_text(blob, first_chars=40, max_chars=40)
    assert "".join(segments) == blob and max(map(len, segments)) == 40


def test_blank_input_gives_no_segments():
    assert segment_text("   \n ") == []


def test_immediate_cuts_the_first_segment_at_the_first_clause():
    text = "Well, as I was saying, the fox jumped. Then it ran; far away."
    assert segment_text(text, mode="immediate") == ["Well,", "as I was saying, the fox jumped. Then it ran; far away."]
    assert segment_text(text, mode="sentence") == ["Well, as I was saying, the fox jumped.", "Then it ran; far away."]
    assert segment_text(text, mode="never") == [text]


OPENING = "Well, here we go again. " + LONG
EXPECTED = {  # first_chars 50, max_chars 120, min_chars 40 (never: the model's limit is max_chars)
    "immediate": [
        "Well,",  # the smallest natural first chunk: first audio leaves early
        "here we go again. The quick brown fox jumps over the lazy dog.",
        "It was a bright cold day in April, and the clocks were striking thirteen!",
        "Was it? Yes; it was, and nobody, not even the mayor,",
        "could explain why the bells kept ringing through the night while the town slept on.",
    ],
    "sentence": [
        "Well, here we go again.",
        "The quick brown fox jumps over the lazy dog.",
        "It was a bright cold day in April, and the clocks were striking thirteen!",
        "Was it? Yes; it was, and nobody, not even the mayor,",
        "could explain why the bells kept ringing through the night while the town slept on.",
    ],
    "never": [  # cut only where the 120-character limit forces it, at the last clause within reach
        "Well, here we go again. The quick brown fox jumps over the lazy dog. It was a bright cold day in April,",
        "and the clocks were striking thirteen! Was it? Yes; it was, and nobody, not even the mayor,",
        "could explain why the bells kept ringing through the night while the town slept on.",
    ],
}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_each_mode_gives_its_segments_fed_whole_and_word_by_word(mode):
    limits = {"first_chars": 50, "max_chars": 120, "min_chars": 40, "mode": mode}
    assert segment_text(OPENING, **limits) == EXPECTED[mode]
    words = [m.end() for m in re.finditer(r"\s+", OPENING)]
    assert feed_in_pieces(OPENING, words, **limits) == EXPECTED[mode]
    assert segment_text(OPENING, mode="never") == [normalise(OPENING)]  # the default limit: one utterance


def feed_in_pieces(text: str, cuts: list[int], **limits) -> list[str]:
    segmenter = TextSegmenter(**limits)
    out, start = [], 0
    for cut in [*sorted(cuts), len(text)]:
        out += segmenter.feed(text[start:cut])
        start = cut
    return out + segmenter.finish()


@pytest.mark.parametrize("mode", ["sentence", "immediate", "never"])
@pytest.mark.parametrize("limits", [{}, {"first_chars": 30, "max_chars": 60, "min_chars": 20}])
def test_pieces_give_the_same_segments_as_the_whole_text(limits, mode):
    import random

    limits = {**limits, "mode": mode}
    rng = random.Random(7)
    texts = [LONG, LONG.replace(" ", "  "), "x" * 130 + " tail.", "One.\nTwo three, four; five. 3.5 is a number!"]
    for text in texts:
        whole = segment_text(text, **limits)
        for _ in range(40):
            cuts = rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 30)))
            assert feed_in_pieces(text, cuts, **limits) == whole
        assert feed_in_pieces(text, list(range(1, len(text))), **limits) == whole  # char by char


def test_segments_are_released_before_the_input_ends():
    segmenter = TextSegmenter(first_chars=50, max_chars=200, min_chars=30)
    assert segmenter.feed("Hello there") == []
    assert segmenter.feed(". How") == ["Hello there."]  # a sentence end releases the first segment
    assert segmenter.feed(" are you today, my dear friend? I am") == ["How are you today, my dear friend?"]
    segmenter.clear()  # dropped: never released
    assert segmenter.feed("Bye. ") == [] and segmenter.finish() == ["Bye."]


def test_enough_characters_release_a_segment_without_a_sentence_end():
    segmenter = TextSegmenter(first_chars=20, max_chars=40, min_chars=10)
    released = segmenter.feed("words without any end keep coming and coming ")
    assert released and len(released[0]) <= 20 and segmenter.pending
