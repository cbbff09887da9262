"""Masked versions of Kokoro's time-normalised blocks, for padded batches.

Items of a batch are left-aligned and zero-padded on the right. Two invariants make every item
see exactly what a solo run sees:

* instance-norm statistics cover an item's real steps only (:func:`masked_instance_norm`);
* the input of every convolution is zero beyond an item's real length, because a solo run's
  convolution reads its own zero padding there. Outputs are re-zeroed after each conv, norm and
  upsampling, at whatever time resolution that layer produces (:class:`TimeMask` tracks it).

When no item is padded (one item, or equal lengths) the kokoro modules are called as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class TimeMask:
    """Real lengths of the items of a ``[B, C, width]`` tensor at one time resolution."""

    lengths: tuple[int, ...]
    width: int
    device: torch.device
    padding: torch.Tensor | None  # [B, 1, width] bool, True on padded steps; None when nothing is padded
    weights: torch.Tensor | None  # [B, width, 1] 1.0 on real steps, to sum over them with a bmm
    count: torch.Tensor | None  # [B, 1, 1] real steps per item, as fp32

    @classmethod
    def build(cls, lengths: Sequence[int], width: int, device: torch.device) -> TimeMask:
        lengths = tuple(int(n) for n in lengths)
        if max(lengths) > width:
            raise ValueError(f"lengths {lengths} exceed the padded width {width}")
        if all(n == width for n in lengths):
            return cls(lengths, width, device, None, None, None)
        real = torch.tensor(lengths, device=device)
        padding = (torch.arange(width, device=device)[None, :] >= real[:, None])[:, None, :]
        weights = (~padding).transpose(1, 2).to(torch.float32)
        return cls(lengths, width, device, padding, weights, real.to(torch.float32)[:, None, None])

    @property
    def padded(self) -> bool:
        return self.padding is not None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        # masked_fill, not a multiply: inf * 0 would leave NaN in the padding.
        return x if self.padding is None else x.masked_fill(self.padding, 0.0)

    def apply_(self, x: torch.Tensor) -> torch.Tensor:
        """In place, for a layer's fresh output (saves a copy of a sample-rate tensor per conv)."""
        return x if self.padding is None else x.masked_fill_(self.padding, 0.0)

    def resized(self, lengths: Sequence[int], width: int) -> TimeMask:
        return TimeMask.build(lengths, width, self.device)

    def after(self, layer: nn.Module) -> TimeMask:
        """The mask of ``layer``'s output, from PyTorch's output-length formula for that layer."""
        return self.resized([output_length(layer, n) for n in self.lengths], output_length(layer, self.width))

    def left_padded(self, left: int) -> TimeMask:
        return self.resized([n + left for n in self.lengths], self.width + left)


def output_length(layer: nn.Module, length: int) -> int:
    """Steps out of a Conv1d / ConvTranspose1d for ``length`` steps in (the torch docs' formulas).

    An item's real outputs, by these formulas, read only its real inputs and its own zero padding,
    so they are exact in a right-padded batch once the input padding is zero.
    """
    if isinstance(layer, nn.ConvTranspose1d):
        (stride,), (padding,), (dilation,), (kernel,), (extra,) = (
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.kernel_size,
            layer.output_padding,
        )
        return (length - 1) * stride - 2 * padding + dilation * (kernel - 1) + extra + 1
    if isinstance(layer, nn.Conv1d):
        if isinstance(layer.padding, str):
            raise ValueError(f"string padding {layer.padding!r} is not supported")
        (stride,), (padding,), (dilation,), (kernel,) = layer.stride, layer.padding, layer.dilation, layer.kernel_size
        return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    raise TypeError(f"no length formula for {type(layer).__name__}")


def masked_instance_norm(
    norm: nn.InstanceNorm1d,
    x: torch.Tensor,
    mask: TimeMask,
    scale: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
) -> torch.Tensor:
    """``norm(x) * scale + shift`` with per-item statistics over real steps only, zero in the padding.

    Same eps and affine as ``norm``. ``scale`` / ``shift`` (``[B, C, 1]``, AdaIN's ``1 + gamma`` and
    ``beta``) are folded into the normalisation's own per-channel gain and offset: one pass over the
    big tensor instead of four, which matters at the generator's sample-rate resolutions.
    """
    if not mask.padded or norm.track_running_stats:  # running statistics ignore the other items anyway
        y = norm(x)
        return mask.apply_(y if scale is None else y * scale + shift)
    # Statistics in fp32 at least: sums over up to ~10^5 steps per item.
    xf = x.float()
    mean = torch.bmm(xf, mask.weights) / mask.count  # masked sum over time, without a masked copy
    centered = (xf - mean).masked_fill_(mask.padding, 0.0)
    var = torch.linalg.vector_norm(centered, dim=-1, keepdim=True).square() / mask.count  # biased, as InstanceNorm's
    gain = torch.rsqrt(var + norm.eps)
    offset = None
    if norm.affine:
        gain = gain * norm.weight.float()[None, :, None]
        offset = norm.bias.float()[None, :, None]
    if scale is not None:
        gain = gain * scale
        offset = shift if offset is None else offset * scale + shift
    y = centered.mul_(gain)
    if offset is not None:
        y = y.add_(offset).masked_fill_(mask.padding, 0.0)
    return y.to(x.dtype)


def adain(module: nn.Module, x: torch.Tensor, style: torch.Tensor, mask: TimeMask) -> torch.Tensor:
    """``kokoro.istftnet.AdaIN1d`` over a padded batch; the padding comes back zero."""
    if not mask.padded:
        return module(x, style)
    h = module.fc(style)
    gamma, beta = torch.chunk(h.view(h.size(0), h.size(1), 1), chunks=2, dim=1)
    return masked_instance_norm(module.norm, x, mask, 1 + gamma, beta)


def adain_res_blk(
    block: nn.Module, x: torch.Tensor, style: torch.Tensor, mask: TimeMask
) -> tuple[torch.Tensor, TimeMask]:
    """``kokoro.istftnet.AdainResBlk1d`` (optionally 2x upsampling): returns the output and its mask.

    Whatever ``x`` holds in the padding is ignored. Dropout is skipped: it is the identity at inference.
    """
    upsamples = block.upsample_type != "none"
    out_mask = mask.after(block.pool) if upsamples else mask

    h = block.actv(adain(block.norm1, x, style, mask))  # LeakyReLU keeps the zero padding
    if upsamples:
        h = out_mask.apply_(block.pool(h))
    h = out_mask.apply_(block.conv1(h))
    h = block.actv(adain(block.norm2, h, style, out_mask))
    h = out_mask.apply_(block.conv2(h))

    shortcut = out_mask.apply(block._shortcut(x))  # may be x itself: not in place
    return (h + shortcut) * torch.rsqrt(torch.tensor(2)), out_mask


def adain_res_block1(block: nn.Module, x: torch.Tensor, style: torch.Tensor, mask: TimeMask) -> torch.Tensor:
    """``kokoro.istftnet.AdaINResBlock1`` (the generator's Snake resblock) over a padded batch."""
    if not mask.padded:
        return block(x, style)
    for c1, c2, n1, n2, a1, a2 in zip(
        block.convs1, block.convs2, block.adain1, block.adain2, block.alpha1, block.alpha2
    ):
        xt = mask.apply_(c1(snake(adain(n1, x, style, mask), a1)))
        xt = mask.apply_(c2(snake(adain(n2, xt, style, mask), a2)))
        x = xt + x
    return x


def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """AdaINResBlock1's Snake1D, ``x + sin(alpha x)^2 / alpha``, with fewer temporaries; keeps 0 at 0."""
    return torch.addcmul(x, torch.sin(alpha * x).square_(), 1 / alpha)


def packed_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    """Run a batch-first LSTM on ``[B, L, C]`` so that no item's recurrence sees padding.

    Packing matters for the backward direction, which would otherwise start in the padding.
    The output is zero beyond each item's length, and keeps the width ``L``.
    """
    width = x.shape[1]
    if all(n == width for n in lengths):
        out, _ = lstm(x)
        return out
    packed = nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(list(lengths), dtype=torch.long), batch_first=True, enforce_sorted=False
    )
    out, _ = lstm(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=width)
    return out


def pad_stack(tensors: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    """Stack ``[..., L_i]`` tensors into ``[B, ..., width]``, zero-padded on the right."""
    return torch.stack([F.pad(t, (0, width - t.shape[-1])) for t in tensors])
