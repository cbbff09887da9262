"""Sample-format conversion: float32 -> s16le / f32le / G.711 mu-law / A-law.

The G.711 encoders follow the ITU-T reference (the Sun g711.c that CPython's ``audioop`` also
implements) bit for bit, vectorised with numpy so a whole chunk converts in one pass.
"""

from __future__ import annotations

import numpy as np

# Segment end points of the reference implementation (14-bit mu-law, 13-bit A-law magnitudes).
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x84 >> 2
_ULAW_CLIP = 8159


def float_to_s16(samples: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] to int16, clipping out-of-range values instead of wrapping them."""
    scaled = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0
    return np.rint(scaled).astype(np.int16)


def s16_to_ulaw(pcm: np.ndarray) -> np.ndarray:
    val = pcm.astype(np.int32) >> 2  # 14-bit, arithmetic shift as in the reference
    negative = val < 0
    mask = np.where(negative, 0x7F, 0xFF)
    mag = np.minimum(np.where(negative, -val, val), _ULAW_CLIP) + _ULAW_BIAS
    seg = np.searchsorted(_ULAW_SEG_END, mag, side="left")
    shift = np.minimum(seg, 7) + 1
    code = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def s16_to_alaw(pcm: np.ndarray) -> np.ndarray:
    val = pcm.astype(np.int32) >> 3  # 13-bit
    negative = val < 0
    mask = np.where(negative, 0x55, 0xD5)
    mag = np.where(negative, -val - 1, val)
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def encode_pcm(samples: np.ndarray, encoding: str) -> bytes:
    """Float32 mono samples -> raw bytes in one of Together's ``response_encoding`` values."""
    if encoding == "pcm_f32le":
        return np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0).astype("<f4").tobytes()
    pcm = float_to_s16(samples)
    if encoding == "pcm_s16le":
        return pcm.astype("<i2").tobytes()
    if encoding == "pcm_mulaw":
        return s16_to_ulaw(pcm).tobytes()
    if encoding == "pcm_alaw":
        return s16_to_alaw(pcm).tobytes()
    raise ValueError(f"unknown encoding {encoding!r}")
