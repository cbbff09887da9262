import warnings

import numpy as np
import pytest

from server.audio.pcm import encode_pcm, float_to_s16, s16_to_alaw, s16_to_ulaw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    # CPython's copy of the ITU-T reference G.711 (Sun g711.c); removed from the stdlib in 3.13,
    # where PyPI's audioop-lts carries the same code.
    audioop = pytest.importorskip("audioop")

ALL_S16 = np.arange(-32768, 32768, dtype=np.int16)


def test_mulaw_matches_reference_for_every_16_bit_value():
    reference = np.frombuffer(audioop.lin2ulaw(ALL_S16.tobytes(), 2), dtype=np.uint8)
    np.testing.assert_array_equal(s16_to_ulaw(ALL_S16), reference)


def test_alaw_matches_reference_for_every_16_bit_value():
    reference = np.frombuffer(audioop.lin2alaw(ALL_S16.tobytes(), 2), dtype=np.uint8)
    np.testing.assert_array_equal(s16_to_alaw(ALL_S16), reference)


def test_g711_known_codes():
    # Silence and full scale, from the G.711 tables: mu-law 0 -> 0xFF, A-law 0 -> 0xD5.
    assert s16_to_ulaw(np.array([0, 32767, -32768], dtype=np.int16)).tolist() == [0xFF, 0x80, 0x00]
    assert s16_to_alaw(np.array([0, 32767, -32768], dtype=np.int16)).tolist() == [0xD5, 0xAA, 0x2A]


def test_float_to_s16_clips_instead_of_wrapping():
    out = float_to_s16(np.array([0.0, 1.0, -1.0, 1.5, -7.0, 0.5], dtype=np.float32))
    assert out.tolist() == [0, 32767, -32767, 32767, -32767, 16384]


@pytest.mark.parametrize("encoding,width", [("pcm_f32le", 4), ("pcm_s16le", 2), ("pcm_mulaw", 1), ("pcm_alaw", 1)])
def test_encode_pcm_sizes_and_decodes_back(encoding, width):
    samples = (0.8 * np.sin(np.linspace(0, 20, 1000))).astype(np.float32)
    data = encode_pcm(samples, encoding)
    assert len(data) == samples.size * width
    if encoding == "pcm_f32le":
        decoded = np.frombuffer(data, "<f4")
    elif encoding == "pcm_s16le":
        decoded = np.frombuffer(data, "<i2") / 32767.0
    else:
        lin = audioop.ulaw2lin(data, 2) if encoding == "pcm_mulaw" else audioop.alaw2lin(data, 2)
        decoded = np.frombuffer(lin, "<i2") / 32767.0
    assert np.max(np.abs(decoded - samples)) < (1e-6 if width == 4 else 1e-4 if width == 2 else 0.03)
