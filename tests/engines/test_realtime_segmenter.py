"""Segmentation for text arriving while someone listens (SessionParams.max_partial_chars)."""

from engines.base import SessionParams
from engines.session import realtime_segmenter
from engines.text import TextSegmenter

ENGINE = TextSegmenter(first_chars=120, max_chars=200, min_chars=100)


def segmenter(max_partial_chars):
    return realtime_segmenter(SessionParams(model="m", voice="v", max_partial_chars=max_partial_chars), ENGINE)


def test_whole_inputs_keep_the_engines_segmenter():
    assert segmenter(None) is None


def test_every_sentence_goes_when_it_ends():
    seg = segmenter(250)
    assert seg.feed("Hi. ") == ["Hi."]
    assert seg.feed("Short one. And") == ["Short one."]  # not gathered into a longer segment
    assert seg.finish() == ["And"]


def test_unfinished_text_goes_at_max_partial_chars_cut_at_a_word():
    seg = segmenter(20)
    assert seg.feed("one two three four five six seven") == ["one two three four"]
    assert seg.finish() == ["five six seven"]


def test_the_engines_longest_segment_still_caps_it():
    assert segmenter(1000).max_chars == 200
