"""NeMo's ECAPA-TDNN encoder (conv_asr.ECAPAEncoder), which differs from the paper's.

NeMo's version: TDNN = conv -> ReLU -> BN; the SE-Res blocks use plain grouped convs (no Res2Net split);
every dilation is 1; multi-layer aggregation concatenates the three SE-block outputs (not layer 0).

NeMo's convs here are *not* masked: the STFT gives len//hop + 1 frames, the preprocessor pads them with zeros to a
multiple of 16, and those padded frames turn non-zero after the first layer and leak into the last valid ones. To
give NeMo's single-utterance result inside a padded batch, each k > 1 conv sees its input zeroed past exactly that
padded length, (valid frames + 1) rounded up to `pad_to`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .features import round_up
from .jasper import time_mask


@dataclass
class EcapaConfig:
    feat_in: int = 80
    filters: list[int] = field(default_factory=lambda: [1024, 1024, 1024, 1024, 3072])
    kernel_sizes: list[int] = field(default_factory=lambda: [5, 3, 3, 3, 1])
    dilations: list[int] = field(default_factory=lambda: [1, 1, 1, 1, 1])
    groups: int = 8
    se_channels: int = 128
    pad_to: int = 16
    type: str = "ecapa"


class TDNN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, dilation=dilation, padding=dilation * (k - 1) // 2)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class SEResBlock(nn.Module):
    """1x1 TDNN -> grouped k conv -> ReLU -> BN -> 1x1 TDNN -> masked SE -> + input."""

    def __init__(self, channels: int, k: int, dilation: int, groups: int, se_channels: int):
        super().__init__()
        self.tdnn1 = TDNN(channels, channels)
        self.conv = nn.Conv1d(channels, channels, k, dilation=dilation, padding=dilation * (k - 1) // 2, groups=groups)
        self.bn = nn.BatchNorm1d(channels)
        self.tdnn2 = TDNN(channels, channels)
        self.se_down = nn.Conv1d(channels, se_channels, 1)
        self.se_bn = nn.BatchNorm1d(se_channels)
        self.se_up = nn.Conv1d(se_channels, channels, 1)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, conv_valid: torch.Tensor) -> torch.Tensor:
        h = self.tdnn1(x) * conv_valid[:, None, :].to(x.dtype)                   # (B, C, T)
        h = self.tdnn2(self.bn(F.relu(self.conv(h))))
        m = valid[:, None, :].to(h.dtype)
        mean = (h * m).sum(dim=2, keepdim=True) / m.sum(dim=2, keepdim=True)    # (B, C, 1)
        s = torch.sigmoid(self.se_up(self.se_bn(F.relu(self.se_down(mean)))))
        return h * s + x


class EcapaEncoder(nn.Module):
    """(B, feat_in, T) + (B,) frame counts -> (B, filters[-1], T) + lengths."""

    def __init__(self, cfg: EcapaConfig):
        super().__init__()
        self.cfg = cfg
        f, k, d = cfg.filters, cfg.kernel_sizes, cfg.dilations
        self.layer0 = TDNN(cfg.feat_in, f[0], k[0], d[0])
        self.blocks = nn.ModuleList(
            SEResBlock(f[i + 1], k[i + 1], d[i + 1], cfg.groups, cfg.se_channels) for i in range(len(f) - 2)
        )
        self.mfa = TDNN(sum(f[1:-1]), f[-1], k[-1], d[-1])
        self.out_channels = f[-1]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = x.shape[2]
        valid = time_mask(lengths, T)
        conv_valid = time_mask(round_up(lengths + 1, self.cfg.pad_to), T)
        x = self.layer0(x * conv_valid[:, None, :].to(x.dtype))
        outs = []
        for block in self.blocks:
            x = block(x, valid, conv_valid)
            outs.append(x)
        h = torch.cat(outs, dim=1)
        if self.cfg.kernel_sizes[-1] > 1:
            h = h * conv_valid[:, None, :].to(h.dtype)
        return self.mfa(h), lengths
