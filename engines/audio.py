"""Small waveform helpers shared by the local engines."""

from __future__ import annotations

import numpy as np


def fade(samples: np.ndarray, n: int, *, rising: bool) -> np.ndarray:
    """Apply an ``n``-sample raised-cosine fade-in (``rising``) or fade-out, on a copy.

    Segments generated separately meet at arbitrary sample values; a few milliseconds of fade at
    each join brings both sides to zero, so concatenation never clicks.
    """
    n = min(n, samples.size)
    if n == 0:
        return samples
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))).astype(np.float32)
    out = samples.copy()
    if rising:
        out[:n] *= ramp
    else:
        out[-n:] *= ramp[::-1]
    return out
