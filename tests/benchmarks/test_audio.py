"""Durations decoded from the bytes for every format and encoding, and where the first audio is."""

from __future__ import annotations

import pytest

from benchmarks.bench.audio import (
    AudioSpec,
    DecodeError,
    audio_seconds,
    container_seconds,
    first_audio_index,
    parse_wav_header,
)
from tests.benchmarks.audio_fixtures import container, pcm, streaming_wav, tone


@pytest.mark.parametrize("encoding", ["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"])
@pytest.mark.parametrize("rate", [8000, 24000, 44100])
def test_raw_pcm_duration_by_width_and_rate(encoding, rate):
    data = pcm(tone(0.75, rate), encoding)
    assert audio_seconds(data, AudioSpec("raw", encoding, rate)) == pytest.approx(0.75, abs=1 / rate)


def test_openai_pcm_is_24k_s16le():
    assert audio_seconds(pcm(tone(2.0), "pcm_s16le"), AudioSpec("pcm")) == pytest.approx(2.0)


def test_a_trailing_partial_sample_is_not_audio():
    assert audio_seconds(b"\x00" * 7, AudioSpec("raw", "pcm_f32le", 1)) == 1.0


@pytest.mark.parametrize("fmt,tolerance", [("wav", 1e-9), ("flac", 1e-9), ("mp3", 0.03), ("opus", 0.03), ("aac", 0.1)])
def test_container_durations(fmt, tolerance):
    assert container_seconds(container(tone(1.5), fmt), fmt) == pytest.approx(1.5, abs=tolerance)


def test_streamed_wav_with_placeholder_sizes_counts_the_bytes_that_arrived():
    data = streaming_wav(tone(1.25))
    assert container_seconds(data, "wav") == pytest.approx(1.25)
    assert container_seconds(data[: 44 + 24000], "wav") == pytest.approx(0.5)  # cut off: what arrived


def test_wav_header_alone_is_not_audio():
    data = container(tone(1.0), "wav")
    assert parse_wav_header(data[:20]) is None
    layout = parse_wav_header(data)
    assert (layout.sample_rate, layout.block_align, layout.data_offset) == (24000, 2, 44)
    spec = AudioSpec("wav")
    assert first_audio_index([44, 1, 1, 100], data, spec) == 2  # the 2 bytes of the first sample are complete
    assert first_audio_index([44], data[:44], spec) is None


def test_not_a_wav():
    with pytest.raises(DecodeError):
        parse_wav_header(b"ID3\x04" + bytes(40))
    with pytest.raises(DecodeError):
        container_seconds(b"definitely not audio at all" * 10, "mp3")


@pytest.mark.parametrize("fmt", ["mp3", "flac", "aac", "opus"])
def test_first_audio_is_the_first_decodable_prefix(fmt):
    data = container(tone(1.0), fmt)
    step = 64
    sizes = [step] * (len(data) // step) + [len(data) % step]
    index = first_audio_index(sizes, data, AudioSpec(fmt))
    assert index is not None
    cut = sum(sizes[: index + 1])
    assert container_seconds(data[:cut], fmt) > 0
    before = cut - sizes[index]  # one chunk less holds no decodable audio
    assert index == 0 or first_audio_index(sizes[:index], data[:before], AudioSpec(fmt)) is None


def test_raw_first_audio_needs_one_whole_sample():
    spec = AudioSpec("raw", "pcm_f32le", 24000)
    assert first_audio_index([2, 1, 1, 8], bytes(12), spec) == 2
    assert first_audio_index([], b"", spec) is None
