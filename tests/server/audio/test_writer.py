import io

import numpy as np
import pytest
import soundfile as sf
import soxr

from engines.base import OutputSpec
from server.audio import AudioWriter, check_output_supported
from server.errors import InvalidRequest

RATE = 24000


def tone(freq: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def run(writer: AudioWriter, signal: np.ndarray, pieces: int = 7) -> bytes:
    out = b"".join(writer.write(part) for part in np.array_split(signal, pieces))
    return out + writer.close()


def test_wav_has_exact_riff_header_and_16_bit_samples():
    signal = tone(440, 0.5)
    data = run(AudioWriter(OutputSpec(format="wav", sample_rate=RATE), RATE), signal)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    audio, rate = sf.read(io.BytesIO(data), dtype="int16")
    info = sf.info(io.BytesIO(data))
    assert (rate, info.subtype, info.channels) == (RATE, "PCM_16", 1)
    np.testing.assert_allclose(audio / 32767.0, signal, atol=1e-4)


def test_empty_audio_still_makes_a_valid_wav():
    data = AudioWriter(OutputSpec(format="wav", sample_rate=16000), RATE).close()
    assert len(data) == 44 and sf.info(io.BytesIO(data)).frames == 0


# MPEG-1 layer III bit-rate index table (kbps) and MPEG-2/2.5's, from ISO 11172-3 / 13818-3.
MPEG1_KBPS = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
MPEG2_KBPS = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]  # MPEG-2.5 shares it


def header_kbps(frame: bytes) -> int:
    assert frame[0] == 0xFF and frame[1] & 0xE0 == 0xE0, "not an MP3 frame sync"
    mpeg1 = (frame[1] >> 3) & 0b11 == 0b11
    return (MPEG1_KBPS if mpeg1 else MPEG2_KBPS)[frame[2] >> 4]


@pytest.mark.parametrize(
    "bit_rate,rate,expected_kbps",
    [
        (32000, 24000, 32),
        (64000, 44100, 64),
        (128000, 24000, 128),
        (192000, 48000, 192),
        (192000, 24000, 160),
        (128000, 8000, 64),
    ],
)
def test_mp3_honours_bit_rate_and_sample_rate(bit_rate, rate, expected_kbps):
    signal = tone(440, 3.0)
    data = run(AudioWriter(OutputSpec(format="mp3", sample_rate=rate, bit_rate=bit_rate), RATE), signal)
    assert header_kbps(data) == expected_kbps
    assert abs(len(data) * 8 / 3.0 / 1000 - expected_kbps) / expected_kbps < 0.1
    decoded, decoded_rate = sf.read(io.BytesIO(data))
    assert decoded_rate == rate
    assert abs(decoded.size - 3.0 * rate) < 0.1 * rate + 1152  # encoder delay and frame padding only


def test_raw_streams_bytes_as_chunks_arrive():
    writer = AudioWriter(OutputSpec(format="raw", encoding="pcm_s16le", sample_rate=RATE), RATE)
    first = writer.write(tone(440, 0.1))
    assert len(first) == 2400 * 2


def test_chunked_resampling_equals_one_shot():
    signal = tone(440, 1.0)
    writer = AudioWriter(OutputSpec(format="raw", encoding="pcm_f32le", sample_rate=16000), RATE)
    streamed = np.frombuffer(run(writer, signal, pieces=13), "<f4")
    one_shot = soxr.resample(signal, RATE, 16000, quality="HQ")
    assert abs(streamed.size - one_shot.size) <= 1
    n = min(streamed.size, one_shot.size)
    np.testing.assert_allclose(streamed[:n], one_shot[:n], atol=1e-4)


def test_resampling_is_band_limited():
    # A 10 kHz tone is above the 8 kHz Nyquist of 16 kHz output: a band-limited resampler removes
    # it; linear interpolation would fold it back to 6 kHz at high level.
    writer = AudioWriter(OutputSpec(format="raw", encoding="pcm_f32le", sample_rate=16000), RATE)
    out = np.frombuffer(run(writer, tone(10000, 1.0)), "<f4")
    assert np.sqrt(np.mean(out[2000:-2000] ** 2)) < 0.01
    # ...while an in-band tone keeps its level and frequency.
    writer = AudioWriter(OutputSpec(format="raw", encoding="pcm_f32le", sample_rate=44100), RATE)
    out = np.frombuffer(run(writer, tone(1000, 1.0)), "<f4")
    assert out.size == pytest.approx(44100, abs=2)
    spectrum = np.abs(np.fft.rfft(out[4410:-4410]))
    peak_hz = np.argmax(spectrum) * 44100 / (out.size - 8820)
    assert peak_hz == pytest.approx(1000, abs=5)
    assert np.sqrt(np.mean(out[4410:-4410] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_output_checks():
    with pytest.raises(InvalidRequest) as err:
        check_output_supported(OutputSpec(format="wav", stream=True, sample_rate=RATE))
    assert err.value.param == "response_format"
    with pytest.raises(InvalidRequest) as err:
        check_output_supported(OutputSpec(format="mp3", sample_rate=17000))
    assert err.value.param == "sample_rate"
    check_output_supported(OutputSpec(format="raw", stream=True, sample_rate=17000))


def test_placeholder_wav_sizes_are_rewritten():
    from server.audio import fix_wav_sizes
    from server.audio.writer import wav_header

    pcm = (np.arange(100, dtype=np.int16)).tobytes()
    streamed = bytearray(wav_header(0, RATE) + pcm)
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\xff"  # how streamed WAVs announce "unknown"
    fixed = fix_wav_sizes(bytes(streamed))
    assert fixed == wav_header(100, RATE) + pcm
    assert sf.info(io.BytesIO(fixed)).frames == 100
    assert fix_wav_sizes(b"ID3not-a-wav") == b"ID3not-a-wav"
