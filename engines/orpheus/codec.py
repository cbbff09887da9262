"""SNAC 24 kHz decoding of many windows at once, with noise that depends on position, not on calls.

SNAC's decoder blocks each add ``randn * linear(x)`` (``NoiseBlock``), drawing fresh noise on
every call. Decoding overlapping windows would then give the same sample different noise in two
windows, and no two runs would agree. Here each NoiseBlock takes its noise from a per-stream
source keyed by absolute frame index: frame ``f`` of a stream always gets the same standard-normal
values (seeded by the stream's noise seed and ``f``). That is the distribution the model was
trained with (i.i.d. unit Gaussian per position), so production uses it too; it merely makes a
window decode equal to the full-sequence decode of the same codes, and a seed reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engines.compiled import CompiledFn
from engines.orpheus.sampling import derive_seed
from engines.orpheus.tokens import SAMPLES_PER_FRAME, frames_to_codebooks


class PositionalNoise(nn.Module):
    """Drop-in for ``snac.layers.NoiseBlock`` whose noise is set by :class:`SnacCodec` per call."""

    noise: torch.Tensor | None

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        self.linear = linear  # same attribute name as NoiseBlock: the state dict keys are unchanged
        # A buffer, not a plain attribute: a compiled decode (orpheus_codec_compile) then takes each
        # call's noise as an input instead of recompiling for every new tensor. Not in the state dict.
        self.register_buffer("noise", None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise is None or self.noise.shape[0] != x.shape[0] or self.noise.shape[2] != x.shape[2]:
            raise RuntimeError("PositionalNoise used without matching noise; decode through SnacCodec")
        return x + self.noise.to(x.dtype) * self.linear(x)


@dataclass(frozen=True)
class Window:
    """Frames ``[start, start + len(frames))`` of one stream, to be decoded together."""

    frames: np.ndarray  # [n, 7] codes
    start: int  # absolute index of the first frame in its stream
    noise_seed: int


class SnacCodec:
    """Owns the SNAC model; decodes batches of windows (see the module docstring)."""

    def __init__(self, model: nn.Module, device: torch.device | str, *, compile: bool = False) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self._noise_blocks: list[PositionalNoise] = []
        self._samples_per_frame: list[int] = []  # noise resolution of each block, per frame
        self._install_noise()
        # orpheus_codec_compile: Inductor fuses the Snake activations and noise blocks between the
        # transposed convolutions; one dynamic-shape graph for every window length and batch size.
        self.compiled = CompiledFn(self.model.decode, "SNAC decoder") if compile else None

    def compile_now(self) -> None:
        """With ``compile``: compile now (at load) for one window and for a batch, not in a request's decode."""
        if self.compiled is None:
            return
        window = Window(np.zeros((4, 7), dtype=np.int64), start=0, noise_seed=0)
        self.decode([window])
        self.decode([window, window])

    def _install_noise(self) -> None:
        from snac.layers import DecoderBlock, NoiseBlock

        rates = list(self.model.decoder_rates)
        resolution = SAMPLES_PER_FRAME // int(np.prod(rates))  # latent steps per frame
        blocks = [m for m in self.model.decoder.model if isinstance(m, DecoderBlock)]
        for block, rate in zip(blocks, rates):
            resolution *= rate  # each block upsamples by its rate before adding noise
            for index, child in enumerate(block.block):
                if isinstance(child, PositionalNoise):  # a second codec over the same model
                    self._noise_blocks.append(child)
                    self._samples_per_frame.append(resolution)
                elif isinstance(child, NoiseBlock):
                    replacement = PositionalNoise(child.linear)
                    block.block[index] = replacement
                    self._noise_blocks.append(replacement)
                    self._samples_per_frame.append(resolution)

    def _frame_noise(self, noise_seed: int, frame: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(derive_seed(noise_seed, frame))
        total = sum(self._samples_per_frame)
        values = torch.randn(total, generator=generator)
        return list(values.split(self._samples_per_frame))

    def _window_noise(self, window: Window) -> list[torch.Tensor]:
        per_frame = [self._frame_noise(window.noise_seed, window.start + i) for i in range(len(window.frames))]
        return [torch.cat([frame[block] for frame in per_frame]) for block in range(len(self._noise_blocks))]

    @torch.inference_mode()
    def decode(self, windows: Sequence[Window]) -> list[np.ndarray]:
        """Audio (float32, ``2048 * frames`` samples) of each window.

        Windows of equal length share one batched SNAC call; different lengths cannot share one
        without padding, and padding would change the audio near the edges.
        """
        results: list[np.ndarray | None] = [None] * len(windows)
        by_length: dict[int, list[int]] = {}
        for index, window in enumerate(windows):
            if len(window.frames):
                by_length.setdefault(len(window.frames), []).append(index)
            else:
                results[index] = np.zeros(0, dtype=np.float32)
        for indices in by_length.values():
            audio = self._decode_same_length([windows[i] for i in indices])
            for i, samples in zip(indices, audio):
                results[i] = samples
        return results  # type: ignore[return-value]

    def _decode_same_length(self, windows: Sequence[Window]) -> list[np.ndarray]:
        books = [frames_to_codebooks(w.frames) for w in windows]
        codes = [torch.from_numpy(np.stack([b[i] for b in books])).to(self.device) for i in range(3)]
        noises = [self._window_noise(w) for w in windows]
        for block, module in enumerate(self._noise_blocks):
            module.noise = torch.stack([n[block] for n in noises])[:, None, :].to(self.device)
        try:
            audio = (self.compiled or self.model.decode)(codes)
        finally:
            for module in self._noise_blocks:
                module.noise = None
        return list(audio[:, 0].float().cpu().numpy())
