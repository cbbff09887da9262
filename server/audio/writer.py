"""Turn a stream of model audio into the bytes of one HTTP response.

An :class:`AudioWriter` resamples (soxr, band-limited, stateful across chunks so chunk edges leave
no artefacts) and encodes into the requested container: raw PCM in any of Together's encodings
(streamable), MP3 (LAME, streamable at the requested bit rate), or WAV (16-bit PCM with an exact
RIFF header, so the body is written once the length is known).
"""

from __future__ import annotations

import struct

import numpy as np
import soxr

from engines.base import EncodedPcm, OutputSpec, PcmChunk
from server.audio.pcm import encode_pcm, float_to_s16
from server.errors import InvalidRequest

# The v1 together SDK compares these literally; anything else is parsed as JSON and fails.
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "raw": "application/octet-stream"}
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def mp3_bit_rate(requested: int, sample_rate: int) -> int:
    """The bit rate actually encoded: the request, capped where the MPEG version tops out.

    MPEG-1 (32-48 kHz) goes to 320 kbps; MPEG-2 (16-24 kHz) to 160; MPEG-2.5 (8-12 kHz) to 64.
    """
    if sample_rate <= 12000:
        return min(requested, 64000)
    if sample_rate <= 24000:
        return min(requested, 160000)
    return requested


def check_output_supported(output: OutputSpec) -> None:
    """Reject combinations no encoder can produce, before any audio is generated."""
    if output.stream and output.format != "raw":
        raise InvalidRequest(
            "Streaming supports only response_format 'raw' or 'mulaw'; use stream=false for mp3 or wav.",
            param="response_format",
        )
    if output.format == "mp3" and output.sample_rate not in MP3_SAMPLE_RATES:
        rates = ", ".join(map(str, MP3_SAMPLE_RATES))
        raise InvalidRequest(f"MP3 supports sample rates {rates}; got {output.sample_rate}.", param="sample_rate")


def wav_header(num_samples: int, sample_rate: int, *, channels: int = 1, bits: int = 16) -> bytes:
    block_align = channels * bits // 8
    data_size = num_samples * block_align
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", 36 + data_size),
            b"WAVE",
            b"fmt ",
            struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, bits),
            b"data",
            struct.pack("<I", data_size),
        )
    )


def fix_wav_sizes(data: bytes) -> bytes:
    """Rewrite the RIFF and ``data`` sizes of a complete WAV file.

    Streamed WAVs (e.g. from an upstream provider) often carry placeholder sizes (0 or 0xFFFFFFFF);
    once the whole body is here the true sizes are known, and strict readers need them.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data
    out = bytearray(data)
    struct.pack_into("<I", out, 4, len(data) - 8)
    pos = 12
    while pos + 8 <= len(out):
        chunk_id, size = bytes(out[pos : pos + 4]), struct.unpack_from("<I", out, pos + 4)[0]
        if chunk_id == b"data":
            struct.pack_into("<I", out, pos + 4, len(out) - pos - 8)
            break
        pos += 8 + size + (size & 1)
    return bytes(out)


class _Resampler:
    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._stream = (
            soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ") if in_rate != out_rate else None
        )

    def __call__(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)


class AudioWriter:
    """Resample + encode; ``write`` returns bytes ready to send (possibly empty), ``close`` the rest."""

    def __init__(self, output: OutputSpec, source_rate: int) -> None:
        assert output.sample_rate is not None, "the service fills in the native rate"
        self.output = output
        self.content_type = CONTENT_TYPES[output.format]
        self._resample = _Resampler(source_rate, output.sample_rate)
        self._wav_parts: list[bytes] = []
        self._mp3 = None
        self._mp3_started = False  # LAME refuses to flush an encoder that never saw a sample
        if output.format == "mp3":
            import lameenc

            enc = lameenc.Encoder()
            enc.set_bit_rate(mp3_bit_rate(output.bit_rate, output.sample_rate) // 1000)
            enc.set_in_sample_rate(output.sample_rate)
            enc.set_out_sample_rate(output.sample_rate)  # else LAME may downsample at low bit rates
            enc.set_channels(1)
            enc.set_quality(2)  # 2 = high quality, the usual choice for speech servers
            self._mp3 = enc

    def _encode(self, samples: np.ndarray) -> bytes:
        if samples.size == 0:
            return b""
        if self.output.format == "raw":
            return encode_pcm(samples, self.output.encoding)
        return self._contain(float_to_s16(samples).astype("<i2").tobytes())

    def _contain(self, pcm: bytes) -> bytes:
        """Raw bytes in the output's PCM encoding -> what the response carries now."""
        if not pcm or self.output.format == "raw":
            return pcm
        if self.output.format == "wav":
            self._wav_parts.append(pcm)
            return b""
        self._mp3_started = True
        return bytes(self._mp3.encode(pcm))

    def write(self, samples: np.ndarray) -> bytes:
        return self._encode(self._resample(samples))

    def write_chunk(self, chunk: PcmChunk | EncodedPcm) -> bytes:
        """An engine's chunk: float samples are converted here; device-encoded PCM only gets its container."""
        if isinstance(chunk, PcmChunk):
            return self.write(chunk.samples)
        if chunk.sample_rate != self.output.sample_rate or chunk.encoding != self.output.pcm_encoding:
            raise ValueError(
                f"engine sent {chunk.encoding} at {chunk.sample_rate} Hz for a {self.output.pcm_encoding} "
                f"response at {self.output.sample_rate} Hz"
            )
        return self._contain(chunk.data)

    def close(self) -> bytes:
        tail = self._encode(self._resample(np.zeros(0, dtype=np.float32), last=True))
        if self.output.format == "mp3":
            return tail + (bytes(self._mp3.flush()) if self._mp3_started else b"")
        if self.output.format == "wav":
            data = b"".join(self._wav_parts)
            return wav_header(len(data) // 2, self.output.sample_rate) + data
        return tail
