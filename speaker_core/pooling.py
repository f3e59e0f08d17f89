"""Length-masked temporal pooling: statistics (x-vector) and attentive statistics (ECAPA / TitaNet)."""
from __future__ import annotations

import torch
import torch.nn as nn

from .ecapa import TDNN
from .jasper import time_mask


class StatsPool(nn.Module):
    """(B, C, T) + (B,) lengths -> (B, 2C) mean and unbiased std over valid frames (NeMo StatsPoolLayer)."""

    def __init__(self, channels: int, eps: float = 1e-10):
        super().__init__()
        self.out_dim = 2 * channels
        self.eps = eps

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        T = x.shape[2]
        pad = ~time_mask(lengths, T)[:, None, :]                                  # (B, 1, T)
        x = x.masked_fill(pad, 0.0)
        # NeMo averages over all T frames and rescales by T/len; kept for bit-level agreement.
        mean = x.mean(dim=-1) * (T / lengths.to(x.dtype))[:, None]              # (B, C)
        corr = 1 if T > 1 else 0
        var = (x - mean[:, :, None]).masked_fill(pad, 0.0).pow(2).sum(-1) / (lengths.to(x.dtype) - corr)[:, None]
        return torch.cat([mean, var.clamp(min=self.eps).sqrt()], dim=-1)


def masked_stats(x: torch.Tensor, w: torch.Tensor, eps: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and std over time; `w` (B, 1|C, T) sums to 1 over valid frames."""
    mean = (w * x).sum(dim=2)                                                     # (B, C)
    std = torch.sqrt((w * (x - mean[:, :, None]).pow(2)).sum(dim=2).clamp(eps))
    return mean, std


class AttentivePool(nn.Module):
    """Channel-wise attentive statistics with global context (NeMo AttentivePoolLayer): (B, C, T) -> (B, 2C)."""

    def __init__(self, channels: int, attention_channels: int = 128):
        super().__init__()
        self.out_dim = 2 * channels
        self.tdnn = TDNN(3 * channels, attention_channels)
        self.conv = nn.Conv1d(attention_channels, channels, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        T = x.shape[2]
        mask = time_mask(lengths, T)[:, None, :]                                  # (B, 1, T)
        w = mask.to(x.dtype) / mask.sum(dim=2, keepdim=True).to(x.dtype)
        mean, std = masked_stats(x, w)
        ctx = torch.cat([x, mean[:, :, None].expand(-1, -1, T), std[:, :, None].expand(-1, -1, T)], dim=1)
        attn = self.conv(torch.tanh(self.tdnn(ctx)))                              # (B, C, T)
        alpha = torch.softmax(attn.masked_fill(~mask, float("-inf")), dim=2)
        mu, sg = masked_stats(x, alpha)
        return torch.cat([mu, sg], dim=1)
