"""Segmentation of one session: the engine's limits in the session's mode (engines.text.session_segmenter)."""

from engines.base import SessionParams
from engines.text import TextSegmenter, session_segmenter

ENGINE = TextSegmenter(first_chars=120, max_chars=200, min_chars=100, never_chars=300)


def segmenter(max_partial_chars, segment="sentence"):
    params = SessionParams(model="m", voice="v", max_partial_chars=max_partial_chars, segment=segment)
    return session_segmenter(params, ENGINE)


def test_whole_inputs_keep_the_engines_segmenter():
    assert segmenter(None) is ENGINE


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


def test_immediate_releases_every_piece_up_to_its_last_word_boundary():
    seg = segmenter(250, "immediate")
    assert seg.feed("Hello") == []  # "Hello" may still grow into "Helloween"
    assert seg.feed(" there") == ["Hello"]
    assert seg.feed(" my friend, how ") == ["there my friend, how"]
    assert seg.feed("are you. Fine") == ["are you."]  # up to the sentence end; "Fine" may grow
    assert seg.feed(" thanks") == ["Fine"]
    assert seg.finish() == ["thanks"]


def test_immediate_pieces_still_respect_the_longest_segment():
    seg = segmenter(10, "immediate")
    assert seg.feed("one two three four five ") == ["one two", "three four", "five"]


def test_never_waits_for_the_commit_and_ignores_max_partial_length():
    seg = segmenter(20, "never")
    assert seg.feed("One sentence. Another one, and more words here. ") == []
    assert seg.finish() == ["One sentence. Another one, and more words here."]


def test_never_splits_only_at_the_models_input_limit():
    seg = segmenter(None, "never")
    text = " ".join(["word"] * 100)  # 499 characters; the model takes 300
    out = seg.feed(text) + seg.finish()
    assert len(out) == 2 and len(out[0]) <= 300 and " ".join(out) == text
