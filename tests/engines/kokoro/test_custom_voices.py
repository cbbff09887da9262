"""Voicepacks from the operator's directories (TTS_KOKORO_VOICES_DIR) and the checks behind every pack."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors
from safetensors.torch import save_file

from engines.base import SynthesisRequest
from engines.kokoro.voicepacks import BadVoicepack, meta_for, tensor_from_bytes
from tests.engines.kokoro.conftest import MODEL


def voice(kokoro_dir, name: str) -> torch.Tensor:
    return torch.load(kokoro_dir / "voices" / f"{name}.pt", weights_only=True)


async def speak(engine, voice_spec: str, seed: int = 5) -> np.ndarray:
    request = SynthesisRequest(model=MODEL, text="Hello there.", voice=voice_spec, seed=seed)
    return np.concatenate([chunk.samples async for chunk in engine.synthesize(request)])


@pytest.fixture
def packs(tmp_path, kokoro_dir):
    """One directory of good packs, bad files and a name clash; another with a sidecar-described pack."""
    first, second = tmp_path / "packs", tmp_path / "more"
    first.mkdir(), second.mkdir()
    bella, heart = voice(kokoro_dir, "af_bella"), voice(kokoro_dir, "af_heart")
    # A mix, as the bank blends "af_bella+af_heart" (weights 0.5 each), so the audio must match it.
    torch.save(bella * 0.5 + heart * 0.5, first / "af_blend.pt")
    save_file({"voice": bella * 0.8}, str(first / "quiet_bella.safetensors"))  # a scaled voice, no prefix
    torch.save(torch.randn(510, 256), first / "am_squeezed.pt")  # the middle axis dropped: same data, accepted
    torch.save(torch.randn(10, 1, 256), first / "too_short.pt")
    save_file({"voice": torch.zeros(510, 1, 256, dtype=torch.int32)}, str(first / "int_pack.safetensors"))
    (first / "garbage.pt").write_bytes(b"not a tensor at all")
    torch.save({"a": torch.zeros(510, 1, 256)}, first / "a_dict.pt")
    torch.save(bella, first / "af_heart.pt")  # collides with a voice of the weights
    (first / "notes.txt").write_text("ignored")
    torch.save(heart * 0.9, second / "narrator.pt")
    sidecar = {"language": "en-GB", "gender": "male", "description": "A calm narrator."}
    (second / "narrator.json").write_text(json.dumps(sidecar))
    torch.save(heart, second / "quiet_BELLA.pt")  # the same name as a pack of the first directory, ignoring case
    return first, second


async def test_voicepacks_are_listed_speak_as_their_mix_and_bad_files_are_skipped_and_logged(
    make_kokoro, packs, kokoro_dir, caplog
):
    first, second = packs
    with caplog.at_level(logging.WARNING):
        engine = await make_kokoro(kokoro_voices_dir=f"{first},{second}")
    voices = {v.id: v for v in engine.voices()}
    assert {"af_blend", "quiet_bella", "am_squeezed", "narrator"} <= set(voices)
    assert not {"too_short", "int_pack", "garbage", "a_dict", "quiet_BELLA"} & set(voices)
    assert voices["af_heart"].kind == "builtin" and voices["af_blend"].kind == "directory"
    # Language and gender: from the prefix (af_ American female, am_ male), else American; or from the sidecar.
    assert (voices["af_blend"].language, voices["af_blend"].gender) == ("en-US", "female")
    assert voices["am_squeezed"].gender == "male"
    assert (voices["quiet_bella"].language, voices["quiet_bella"].gender) == ("en-US", None)
    narrator = voices["narrator"]
    assert (narrator.language, narrator.gender, narrator.description) == ("en-GB", "male", "A calm narrator.")
    assert engine._bank.lang_codes["narrator"] == "b"

    # Each skipped file is named in the log, with why; the clash names the voice it collides with.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for bad in ("too_short.pt", "int_pack.safetensors", "garbage.pt", "a_dict.pt", "quiet_BELLA.pt"):
        assert bad in logged, bad
    assert "[10, 1, 256]" in logged and "torch.int32" in logged
    clash = next(r for r in caplog.records if "af_heart.pt" in r.getMessage())
    assert clash.levelno == logging.ERROR and "builtin voice 'af_heart'" in clash.getMessage()
    torch.testing.assert_close(engine._bank.pack(engine._bank.resolve("af_heart")), voice(kokoro_dir, "af_heart"))

    # The pack speaks exactly as the same tensor passed as a mix (same seed), and differs from another voice.
    blend = await speak(engine, "af_blend", seed=5)
    mix = await speak(engine, "af_bella+af_heart", seed=5)
    assert blend.shape == mix.shape and np.allclose(blend, mix, atol=1e-6)
    other = await speak(engine, "af_bella", seed=5)
    assert other.shape != blend.shape or not np.allclose(other, blend, atol=1e-3)
    # A pack is usable inside a mix like any voice, in any case spelling.
    assert (await speak(engine, "QUIET_bella(1)+narrator(2)")).size > 0


def test_tensor_checks_accept_float_packs_in_either_format():
    good = torch.randn(510, 1, 256, dtype=torch.float16)
    buffer = io.BytesIO()
    torch.save(good, buffer)
    loaded = tensor_from_bytes(buffer.getvalue(), "x.pt")
    assert loaded.dtype == torch.float32 and loaded.shape == (510, 1, 256)
    assert torch.equal(tensor_from_bytes(save_safetensors({"v": good}), "x.safetensors"), good.float())


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (lambda: save_safetensors({"v": torch.zeros(511, 1, 256)}), "shape"),
        (lambda: save_safetensors({"v": torch.full((510, 1, 256), float("nan"))}), "NaN"),
        (lambda: save_safetensors({"a": torch.zeros(510, 1, 256), "b": torch.zeros(510, 1, 256)}), "one tensor"),
        (lambda: b"\x00" * 64, "neither"),
    ],
)
def test_tensor_checks_name_the_file_and_the_problem(data, problem):
    with pytest.raises(BadVoicepack, match=f"upload.bin.*{problem}"):
        tensor_from_bytes(data(), "upload.bin")


def test_language_comes_from_the_sidecar_then_the_prefix():
    assert meta_for("bm_lewis").lang_code == "b" and meta_for("bm_lewis").gender == "male"
    assert meta_for("ef_x").language == "es-ES"
    assert meta_for("narrator").lang_code == "a" and meta_for("narrator").language == "en-US"
    assert meta_for("af_x", {"language": "fr"}).language == "fr-FR"
    assert meta_for("af_x", {"language": "b"}).lang_code == "b"
    with pytest.raises(BadVoicepack, match="klingon"):
        meta_for("af_x", {"language": "klingon"})
