"""NeMo's AudioToMelSpectrogramPreprocessor (FilterbankFeatures), reproduced step by step, plus SpecAugment.

Order: dither (training only) -> pre-emphasis -> STFT (hann, center, zero pad) -> power -> slaney mel
-> log(x + 2^-24) -> per-feature normalisation over valid frames -> zero past the valid frames -> pad to 16.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torchaudio.functional as AF


@dataclass
class FeatureConfig:
    sample_rate: int = 16000
    n_mels: int = 64
    win_length: int = 320      # 20 ms SpeakerNet; 400 (25 ms) ECAPA / TitaNet
    hop_length: int = 160      # 10 ms
    n_fft: int = 512
    preemph: float = 0.97
    dither: float = 1e-5       # training only
    log_guard: float = 2.0 ** -24
    pad_to: int = 16
    normalize: str = "per_feature"


@dataclass
class SpecAugmentConfig:
    freq_masks: int = 3
    freq_width: int = 4
    time_masks: int = 5
    time_width: float = 0.03   # fraction of each utterance's valid length


def round_up(lengths: torch.Tensor, multiple: int) -> torch.Tensor:
    return lengths if multiple <= 1 else (lengths + multiple - 1) // multiple * multiple


def normalize_per_feature(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean / (unbiased std + 1e-5) over each utterance's valid frames, as NeMo's normalize_batch."""
    valid = torch.arange(x.shape[2], device=x.device)[None, :] < lengths[:, None]  # (B, T)
    n = valid.sum(dim=1)                                                            # (B,)
    mean = torch.where(valid[:, None], x, 0.0).sum(dim=2) / n[:, None]              # (B, F)
    var = torch.where(valid[:, None], x - mean[:, :, None], 0.0).pow(2).sum(dim=2) / (n[:, None] - 1.0)
    std = torch.sqrt(var)
    std = std.masked_fill(std.isnan(), 0.0) + 1e-5  # a single valid frame gives 0/0
    return (x - mean[:, :, None]) / std[:, :, None]


class MelFeatures(nn.Module):
    """(B, N) waveform + (B,) sample counts -> (B, n_mels, T) log-mel features + (B,) valid frame counts.

    `window` and `fb` are buffers so a NeMo checkpoint's own filterbank loads bit for bit. A fresh model builds
    `fb` with torchaudio's slaney mel filterbank; NeMo builds it with librosa in float64, which agrees to
    about 1e-7 relative, so only imported checkpoints are bit-exact.
    """

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.win_length, periodic=False), persistent=True)
        fb = AF.melscale_fbanks(cfg.n_fft // 2 + 1, 0.0, cfg.sample_rate / 2, cfg.n_mels, cfg.sample_rate,
                                norm="slaney", mel_scale="slaney")  # (n_freq, n_mels)
        self.register_buffer("fb", fb.T.unsqueeze(0).contiguous(), persistent=True)  # (1, n_mels, n_freq)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        pad = self.cfg.n_fft // 2 * 2  # center=True pads n_fft//2 on each side
        return torch.div(lengths + pad - self.cfg.n_fft, self.cfg.hop_length, rounding_mode="floor").long()

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        wave = wave.float()                                                 # (B, N)
        frames = self.frame_lengths(lengths)                                # (B,)
        if self.training and cfg.dither > 0:
            wave = wave + cfg.dither * torch.randn_like(wave)
        if cfg.preemph:
            in_clip = torch.arange(wave.shape[1], device=wave.device)[None, :] < lengths[:, None]
            wave = torch.cat([wave[:, :1], wave[:, 1:] - cfg.preemph * wave[:, :-1]], dim=1)
            wave = wave.masked_fill(~in_clip, 0.0)
        with torch.autocast(wave.device.type, enabled=False):
            spec = torch.stft(wave, cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                              window=self.window.float(), center=True, pad_mode="constant", return_complex=True)
            # NeMo takes sqrt(re^2 + im^2) then squares it; torch.abs (hypot), as torchaudio's Spectrogram uses,
            # differs in the last bit, so the power is formed the same way here.
            mag = torch.view_as_real(spec).pow(2).sum(-1).sqrt()            # (B, n_freq, T)
            x = torch.matmul(self.fb.float(), mag.pow(2.0))                 # (B, n_mels, T)
        x = torch.log(x + cfg.log_guard)
        if cfg.normalize == "per_feature":
            x = normalize_per_feature(x, frames)
        pad_mask = torch.arange(x.shape[2], device=x.device)[None, :] >= frames[:, None]
        x = x.masked_fill(pad_mask[:, None, :], 0.0)
        if cfg.pad_to > 0 and x.shape[2] % cfg.pad_to:
            x = nn.functional.pad(x, (0, cfg.pad_to - x.shape[2] % cfg.pad_to))
        return x, frames


def spec_augment(x: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero random frequency bands and time spans of (B, F, T) features (training only)."""
    x = x.clone()
    B, F, _ = x.shape
    g = generator
    for b in range(B):
        for _ in range(cfg.freq_masks):
            w = int(torch.randint(0, cfg.freq_width + 1, (1,), generator=g))
            f0 = int(torch.randint(0, max(1, F - w), (1,), generator=g))
            x[b, f0:f0 + w, :] = 0.0
        n = int(lengths[b])
        tw = max(1, int(n * cfg.time_width)) if isinstance(cfg.time_width, float) else int(cfg.time_width)
        for _ in range(cfg.time_masks):
            w = int(torch.randint(0, tw + 1, (1,), generator=g))
            t0 = int(torch.randint(0, max(1, n - w), (1,), generator=g))
            x[b, :, t0:t0 + w] = 0.0
    return x
