"""Jasper / QuartzNet encoder (NeMo ConvASREncoder) as used by SpeakerNet and TitaNet.

A block is R sub-blocks of [depthwise conv k -> pointwise conv -> BatchNorm], ReLU between them; the last
sub-block is followed by optional squeeze-excitation, then the residual (1x1 conv + BN of the block input) is
added, then ReLU. Every k > 1 conv sees its input zeroed past each utterance's length ("masked conv"), so a
padded batch gives the same result as one utterance at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BlockConfig:
    filters: int
    kernel: int
    repeat: int = 1
    residual: bool = True
    se: bool = False
    dropout: float = 0.0
    separable: bool = True


@dataclass
class JasperConfig:
    feat_in: int = 64
    blocks: list[BlockConfig] = field(default_factory=list)
    se_reduction_ratio: int = 8
    type: str = "jasper"


def time_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return (torch.arange(T, device=lengths.device)[None, :] < lengths[:, None])  # (B, T) True = valid


class SubBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, separable: bool):
        super().__init__()
        self.dw = nn.Conv1d(cin, cin, k, padding=k // 2, groups=cin, bias=False) if separable else None
        self.pw = nn.Conv1d(cin, cout, 1 if separable else k, padding=0 if separable else k // 2, bias=False)
        self.bn = nn.BatchNorm1d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = x * valid[:, None, :].to(x.dtype)  # (B, C, T), zero past each length before the k-wide conv
        if self.dw is not None:
            x = self.dw(x)
        return self.bn(self.pw(x))


class SqueezeExcite(nn.Module):
    """Global-context SE: masked time mean -> FC -> ReLU -> FC -> sigmoid, computed in fp32 as NeMo does."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction, bias=False)
        self.fc2 = nn.Linear(channels // reduction, channels, bias=False)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            x = x.float().masked_fill(~valid[:, None, :], 0.0)                         # (B, C, T)
            mean = x.sum(dim=-1) / valid.sum(dim=-1, keepdim=True).to(x.dtype)       # (B, C)
            scale = torch.sigmoid(self.fc2(F.relu(self.fc1(mean))))                  # (B, C)
            return x * scale[:, :, None]


class JasperBlock(nn.Module):
    def __init__(self, cin: int, cfg: BlockConfig, se_reduction: int):
        super().__init__()
        self.subs = nn.ModuleList(
            SubBlock(cin if i == 0 else cfg.filters, cfg.filters, cfg.kernel, cfg.separable) for i in range(cfg.repeat)
        )
        self.se = SqueezeExcite(cfg.filters, se_reduction) if cfg.se else None
        self.res_conv = nn.Conv1d(cin, cfg.filters, 1, bias=False) if cfg.residual else None
        self.res_bn = nn.BatchNorm1d(cfg.filters, eps=1e-3) if cfg.residual else None
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        out = x
        for i, sub in enumerate(self.subs):
            out = sub(out, valid)
            if i < len(self.subs) - 1:
                out = self.drop(F.relu(out))
        if self.se is not None:
            out = self.se(out, valid)
        if self.res_conv is not None:
            out = out + self.res_bn(self.res_conv(x))
        return self.drop(F.relu(out))


class JasperEncoder(nn.Module):
    """(B, feat_in, T) features + (B,) frame counts -> (B, C_out, T) + lengths (stride 1 keeps them)."""

    def __init__(self, cfg: JasperConfig):
        super().__init__()
        self.cfg = cfg
        blocks, cin = [], cfg.feat_in
        for b in cfg.blocks:
            blocks.append(JasperBlock(cin, b, cfg.se_reduction_ratio))
            cin = b.filters
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = cin
        # How far an output frame sees: every k-wide conv adds k // 2 frames each side (stride and dilation 1).
        self.radius = sum(b.repeat * (b.kernel // 2) for b in cfg.blocks)
        # Without squeeze-excitation (SpeakerNet) a frame depends only on its radius, so a long clip can go through
        # in pieces with `radius` frames of context and give the same frames; SE (TitaNet) sees the whole clip.
        self.local = not any(b.se for b in cfg.blocks)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        valid = time_mask(lengths, x.shape[2])
        for block in self.blocks:
            x = block(x, valid)
        return x, lengths


def speakernet_blocks(filters: int) -> list[BlockConfig]:
    return [BlockConfig(filters, 3, 1, residual=True, dropout=0.5)] + [
        BlockConfig(filters, k, 2, residual=True, dropout=0.5) for k in (7, 11, 15)
    ] + [BlockConfig(1500, 1, 1, residual=False)]


def titanet_blocks(filters: int, epilog: int = 3072) -> list[BlockConfig]:
    return [BlockConfig(filters, 3, 1, residual=False, se=True)] + [
        BlockConfig(filters, k, 3, residual=True, se=True, dropout=0.1) for k in (7, 11, 15)
    ] + [BlockConfig(epilog, 1, 1, residual=False, se=True)]
