import pytest
import torch

from engines.kokoro.voices import VoiceBank, parse_voice_spec
from server.errors import InvalidVoice
from voices import load_catalog


def test_catalog_has_the_54_kokoro_voices():
    voices = load_catalog("kokoro")["voices"]
    assert len(voices) == 54 and len({v["id"] for v in voices}) == 54
    assert {v["lang_code"] for v in voices} == set("abjzefhip")
    assert all(v["gender"] in ("female", "male") for v in voices)


def test_parse_plain_mixed_and_weighted():
    assert parse_voice_spec("af_heart").parts == (("af_heart", 1.0),)
    assert parse_voice_spec("af_bella+af_heart").parts == (("af_bella", 0.5), ("af_heart", 0.5))
    assert parse_voice_spec("af_bella(3) + af_heart(1)").parts == (("af_bella", 0.75), ("af_heart", 0.25))


@pytest.mark.parametrize("spec", ["af_bella(0)+af_heart", "af_bella(", "+", "af heart", "a(-1)"])
def test_bad_specs_are_invalid_voice(spec):
    with pytest.raises(InvalidVoice):
        parse_voice_spec(spec)


def test_bank_lists_present_voices_and_mixes_packs(kokoro_dir):
    bank = VoiceBank(kokoro_dir / "voices", "cpu")
    ids = {v.id for v in bank.voices()}
    assert ids == {"af_heart", "af_bella", "bm_george", "ef_dora", "jf_alpha"}
    assert {v.language for v in bank.voices() if v.id == "bm_george"} == {"en-GB"}
    a = torch.load(kokoro_dir / "voices" / "af_bella.pt", weights_only=True)
    b = torch.load(kokoro_dir / "voices" / "af_heart.pt", weights_only=True)
    mixed = bank.pack(bank.resolve("af_bella(2)+af_heart(1)"))
    torch.testing.assert_close(mixed, a * 2 / 3 + b / 3)
    with pytest.raises(InvalidVoice, match="af_nicole"):
        bank.resolve("af_heart+af_nicole")
    assert bank.resolve("AF_Heart(1)+bm_george(3)").parts == (("af_heart", 0.25), ("bm_george", 0.75))
