"""Test audio in every format the benchmark decodes: G.711 and PCM by hand, containers by real encoders."""

from __future__ import annotations

import io

import numpy as np
import soundfile

RATE = 24000


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def pcm(samples: np.ndarray, encoding: str) -> bytes:
    if encoding == "pcm_f32le":
        return samples.astype("<f4").tobytes()
    if encoding == "pcm_s16le":
        return (samples * 32767).astype("<i2").tobytes()
    # G.711: one byte per sample; the value does not matter to a duration
    return bytes(len(samples))


def container(samples: np.ndarray, fmt: str, rate: int = RATE) -> bytes:
    """wav, flac, mp3 and Ogg Opus through libsndfile; AAC (ADTS) through PyAV."""
    if fmt == "aac":
        return _aac(samples, rate)
    buffer = io.BytesIO()
    kind = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III")}
    name, subtype = kind.get(fmt, ("OGG", "OPUS"))
    soundfile.write(buffer, samples, rate, format=name, subtype=subtype)
    return buffer.getvalue()


def _aac(samples: np.ndarray, rate: int) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame_size = 1024
        for start in range(0, len(samples), frame_size):
            block = samples[start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def streaming_wav(samples: np.ndarray, rate: int = RATE) -> bytes:
    """A WAV as a streaming server writes it: placeholder sizes (0xFFFFFFFF) in the header."""
    data = pcm(samples, "pcm_s16le")
    header = (
        b"RIFF"
        + (0xFFFFFFFF).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + rate.to_bytes(4, "little")
        + (rate * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + (0xFFFFFFFF).to_bytes(4, "little")
    )
    return header + data
