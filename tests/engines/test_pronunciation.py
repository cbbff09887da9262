"""Pronunciation dictionaries: parsing, whole-word replacement, precedence, and words named as written."""

import pytest

from engines.base import WordTiming
from engines.errors import InvalidRequest
from engines.pronunciation import (
    PARAM,
    Pronouncer,
    WordRestorer,
    from_extra_params,
    load_file,
    merge,
    parse_pronunciation_dict,
)


def test_entries_split_at_the_first_slash():
    assert parse_pronunciation_dict(["omg/oh my god", "tomato//təmˈɑːtQ/"]) == (
        ("omg", "oh my god"),
        ("tomato", "/təmˈɑːtQ/"),
    )
    assert from_extra_params({"pronunciation_dict": ["a1/a one"]}) == (("a1", "a one"),)
    assert from_extra_params(None) == from_extra_params({}) == ()


@pytest.mark.parametrize(
    "value", ["omg/oh my god", ["omg"], ["/oh my god"], ["omg/"], ["omg/ / "], [7], ["!!/bang"], ["x" * 600 + "/y"]]
)
def test_malformed_dictionaries_are_a_400_naming_the_field(value):
    with pytest.raises(InvalidRequest) as caught:
        parse_pronunciation_dict(value)
    assert caught.value.param == PARAM == "extra_params.pronunciation_dict"


def test_whole_words_any_case_longest_first():
    pronouncer = Pronouncer(merge([("new", "gnu"), ("New York", "the big apple"), ("omg", "oh my god")]))
    out = pronouncer.rewrite("OMG, New  York is new; omgosh and renew.")
    assert out.text == "oh my god, the big apple is gnu; omgosh and renew."
    assert [r.source for r in out.regions] == ["OMG", "New  York", "new"]
    assert [out.text[r.start : r.end] for r in out.regions] == ["oh my god", "the big apple", "gnu"]


def test_phoneme_replacements_become_misaki_markup_only_where_the_engine_takes_them():
    entries = (("tomato", "/təmˈɑːtQ/"), ("omg", "oh my god"))
    assert Pronouncer(entries, phonemes=True).rewrite("A Tomato, omg.").text == "A [Tomato](/təmˈɑːtQ/), oh my god."
    assert Pronouncer(entries).rewrite("A Tomato, omg.").text == "A Tomato, oh my god."  # spoken as written
    assert not Pronouncer(entries[:1])


def test_request_entries_win_over_the_server_wide_file(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("# server-wide\nomg/oh my gosh\n\nSQL/sequel\n", encoding="utf-8")
    server = load_file(path)
    assert server == (("omg", "oh my gosh"), ("SQL", "sequel"))
    merged = merge(server, parse_pronunciation_dict(["OMG/oh my god"]))
    assert Pronouncer(merged).rewrite("omg, SQL").text == "oh my god, sequel"
    path.write_text("omg/oh my god\nbroken line\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        load_file(path)


def timings(*words):
    return [WordTiming(w, i * 0.1, i * 0.1 + 0.1) for i, w in enumerate(words)]


def fold(source, items):
    return WordTiming(source, items[0].start, items[-1].end)


def test_timed_words_are_named_by_the_inputs_words():
    restorer = WordRestorer(lambda w: w.word, fold)
    restorer.add(Pronouncer([("omg", "oh my god")]).rewrite("I said OMG today."))
    words = timings("I", "said", "oh", "my", "god", "today.")
    assert restorer.feed(words) + restorer.flush() == [
        WordTiming("I", 0.0, 0.1),
        WordTiming("said", 0.1, 0.2),
        WordTiming("OMG", 0.2, 0.5),
        WordTiming("today.", 0.5, 0.6),
    ]


def test_a_replacement_split_across_batches_is_held_back_until_it_is_spoken():
    restorer = WordRestorer(lambda w: w.word, fold)
    pronouncer = Pronouncer([("omg", "oh my god")])
    restorer.add(pronouncer.rewrite("Well omg."))
    restorer.add(pronouncer.rewrite("Again omg"))  # a later text of the same session
    words = timings("Well", "oh", "my", "god.", "Again", "oh", "my", "god")
    first = restorer.feed(words[:3])
    assert [w.word for w in first] == ["Well"]  # "oh my" waits for "god."
    rest = restorer.feed(words[3:6]) + restorer.feed(words[6:]) + restorer.flush()
    assert [w.word for w in rest] == ["omg", "Again", "omg"]
    assert (rest[0].start, rest[0].end) == (0.1, 0.4)


def test_phoneme_markup_keeps_the_word():
    restorer = WordRestorer(lambda w: w.word, fold)
    restorer.add(Pronouncer([("omg", "/ˈOmˌIɡˈɑd/")], phonemes=True).rewrite("say omg now"))
    assert [w.word for w in restorer.feed(timings("say", "omg", "now"), final=True)] == ["say", "omg", "now"]
