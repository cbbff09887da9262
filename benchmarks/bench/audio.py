"""How much audio a response holds, decoded from the bytes themselves (never estimated from text).

* raw PCM (Together ``raw``, OpenAI ``pcm``): bytes / sample width / sample rate;
* WAV: the RIFF header's format, then the data bytes that actually arrived (a streamed WAV may
  carry a placeholder length);
* MP3, FLAC, Ogg Opus, AAC (ADTS) and anything else: decoded with soundfile (libsndfile) or, where
  it cannot (AAC, some Opus), with PyAV when it is installed.

:func:`first_audio_index` finds the first chunk of a response after which some audio is decodable:
that chunk's arrival is the time to first audio (a WAV header alone is not audio).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass

PCM_WIDTH = {"pcm_f32le": 4, "pcm_s16le": 2, "pcm_mulaw": 1, "pcm_alaw": 1}
RAW_FORMATS = ("raw", "pcm")
AV_FORMAT = {"mp3": "mp3", "aac": "aac", "opus": "ogg", "ogg": "ogg", "flac": "flac", "wav": "wav"}


class DecodeError(ValueError):
    """The bytes are not audio of the expected format."""


@dataclass(frozen=True)
class AudioSpec:
    """What a response carries: a container format, or raw PCM of ``encoding`` at ``sample_rate``."""

    format: str  # raw | pcm | wav | mp3 | opus | aac | flac
    encoding: str = "pcm_s16le"  # raw PCM only
    sample_rate: int = 24000  # raw PCM only

    @property
    def is_raw(self) -> bool:
        return self.format in RAW_FORMATS

    @property
    def width(self) -> int:
        return PCM_WIDTH[self.encoding]


def pcm_seconds(nbytes: int, encoding: str, sample_rate: int) -> float:
    return nbytes // PCM_WIDTH[encoding] / sample_rate


@dataclass(frozen=True)
class WavLayout:
    data_offset: int
    data_bytes: int | None  # None: a placeholder length (streaming), use what arrived
    sample_rate: int
    block_align: int


def parse_wav_header(data: bytes) -> WavLayout | None:
    """The ``fmt `` and ``data`` chunks of a RIFF/WAVE prefix; None until the data chunk has begun."""
    if len(data) < 12:
        return None
    if data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise DecodeError("not a RIFF/WAVE stream")
    pos, rate, align = 12, None, None
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if tag == b"fmt ":
            if pos + 8 + 16 > len(data):
                return None
            _, _channels, rate, _, align, _ = struct.unpack("<HHIIHH", data[pos + 8 : pos + 24])
        elif tag == b"data":
            if rate is None or not align:
                raise DecodeError("WAV data chunk before its fmt chunk")
            placeholder = size in (0, 0xFFFFFFFF) or data[:4] == b"RF64"
            return WavLayout(pos + 8, None if placeholder else size, rate, align)
        pos += 8 + size + (size & 1)
    return None


def wav_seconds(data: bytes) -> float:
    layout = parse_wav_header(data)
    if layout is None:
        raise DecodeError("WAV without a data chunk")
    arrived = len(data) - layout.data_offset
    nbytes = arrived if layout.data_bytes is None else min(layout.data_bytes, arrived)
    return nbytes // layout.block_align / layout.sample_rate


def _soundfile_samples(data: bytes) -> tuple[int, int]:
    import soundfile

    with soundfile.SoundFile(io.BytesIO(data)) as f:
        frames = sum(len(block) for block in f.blocks(blocksize=65536, dtype="int16"))
        return frames, f.samplerate


class _Unseekable(io.RawIOBase):
    """A byte prefix that FFmpeg reads front to back (a seekable one makes it look for the end)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def have_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def _pyav_samples(data: bytes, fmt: str) -> tuple[int, int]:
    """Samples PyAV decodes from ``data`` (a cut-off stream gives what decoded before the cut)."""
    try:
        import av
    except ImportError as exc:
        raise DecodeError(f"decoding {fmt} needs PyAV (pip install av)") from exc
    frames, rate = 0, 0
    try:
        with av.open(_Unseekable(data), format=AV_FORMAT.get(fmt)) as container:
            stream = container.streams.audio[0]
            for packet in container.demux(stream):
                for frame in packet.decode():
                    frames += frame.samples
                    rate = frame.sample_rate
    except (av.error.FFmpegError, IndexError) as exc:  # cut off mid-packet, or no stream yet
        if not frames:
            raise DecodeError(f"PyAV cannot decode this {fmt}: {exc}") from exc
    return frames, rate


def container_seconds(data: bytes, fmt: str) -> float:
    """Seconds of audio in a complete (or cut-off) container stream."""
    if not data:
        return 0.0
    if fmt == "wav":
        try:
            return wav_seconds(data)
        except DecodeError:
            pass
    errors = []
    if fmt != "aac":  # libsndfile has no AAC
        try:
            frames, rate = _soundfile_samples(data)
            if rate:
                return frames / rate
        except Exception as exc:  # libsndfile raises its own error types
            errors.append(f"soundfile: {exc}")
    try:
        frames, rate = _pyav_samples(data, fmt)
        return frames / rate if rate else 0.0
    except DecodeError as exc:
        errors.append(str(exc))
    raise DecodeError(f"cannot decode {fmt} ({'; '.join(errors)})")


def audio_seconds(data: bytes, spec: AudioSpec) -> float:
    if spec.is_raw:
        return pcm_seconds(len(data), spec.encoding, spec.sample_rate)
    return container_seconds(data, spec.format)


def _has_audio(prefix: bytes, spec: AudioSpec) -> bool:
    if spec.is_raw:
        return len(prefix) >= spec.width
    if spec.format == "wav":
        try:
            layout = parse_wav_header(prefix)
        except DecodeError:
            layout = None
        if layout is not None:
            return len(prefix) - layout.data_offset >= layout.block_align
    try:
        if have_pyav():  # libsndfile may report a cut-off MP3's full length from its Xing header
            frames, _ = _pyav_samples(prefix, spec.format)
            return frames > 0
        return container_seconds(prefix, spec.format) > 0
    except DecodeError:
        return False


def first_audio_index(chunk_sizes: Sequence[int], data: bytes, spec: AudioSpec) -> int | None:
    """Index of the first chunk after which ``data[:that point]`` holds decodable audio (None: none).

    Decodability only grows with the prefix, so a binary search over chunk ends needs few decodes.
    """
    ends, total = [], 0
    for size in chunk_sizes:
        total += size
        ends.append(total)
    if not ends or not _has_audio(data[: ends[-1]], spec):
        return None
    lo, hi = 0, len(ends) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _has_audio(data[: ends[mid]], spec):
            hi = mid
        else:
            lo = mid + 1
    return lo
