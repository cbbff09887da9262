import pytest

from engines.text import segment_text, split_sentences

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
