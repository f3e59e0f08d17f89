"""SpeakerModel = mel features -> encoder (Jasper or ECAPA) -> SpeakerDecoder, with named presets.

>>> m = SpeakerModel(preset("speakernet-m", num_classes=4)).eval()
>>> import torch
>>> m(torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000])).shape
torch.Size([2, 256])
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .decoder import DecoderConfig, SpeakerDecoder
from .ecapa import EcapaConfig, EcapaEncoder
from .features import FeatureConfig, MelFeatures, SpecAugmentConfig, spec_augment
from .jasper import BlockConfig, JasperConfig, JasperEncoder, speakernet_blocks, titanet_blocks
from .pooling import StatsPool


@dataclass
class ModelConfig:
    name: str = "speakernet-m"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    encoder: JasperConfig | EcapaConfig = field(default_factory=JasperConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    spec_augment: SpecAugmentConfig | None = None


def _speakernet(name: str, filters: int, emb_sizes: list[int]) -> ModelConfig:
    return ModelConfig(
        name=name,
        features=FeatureConfig(n_mels=64, win_length=320),
        encoder=JasperConfig(feat_in=64, blocks=speakernet_blocks(filters)),
        decoder=DecoderConfig(feat_in=1500, emb_sizes=emb_sizes, pool_mode="xvector"),
        spec_augment=SpecAugmentConfig(),
    )


def _titanet(name: str, filters: int) -> ModelConfig:
    return ModelConfig(
        name=name,
        features=FeatureConfig(n_mels=80, win_length=400),
        encoder=JasperConfig(feat_in=80, blocks=titanet_blocks(filters)),
        decoder=DecoderConfig(feat_in=3072, emb_sizes=[192], pool_mode="attention"),
        spec_augment=SpecAugmentConfig(),
    )


def _ecapa(name: str, channels: int = 1024, emb: int = 192, attention: int = 128) -> ModelConfig:
    return ModelConfig(
        name=name,
        features=FeatureConfig(n_mels=80, win_length=400),
        encoder=EcapaConfig(feat_in=80, filters=[channels] * 4 + [3 * channels]),
        decoder=DecoderConfig(feat_in=3 * channels, emb_sizes=[emb], pool_mode="attention",
                              attention_channels=attention),
        spec_augment=SpecAugmentConfig(),
    )


PRESETS = {
    "speakernet-m": lambda: _speakernet("speakernet-m", 256, [256]),       # SpeakerNet_verification_3x2x256
    "speakernet-l": lambda: _speakernet("speakernet-l", 512, [512, 512]),  # SpeakerNet_recognition_3x2x512
    "ecapa-tdnn": lambda: _ecapa("ecapa-tdnn"),                             # NeMo ecapa_tdnn (c1024)
    "ecapa-small": lambda: _ecapa("ecapa-small", 256, 192, 64),             # our small shipped ECAPA
    "ecapa-m": lambda: _ecapa("ecapa-m", 384, 192, 128),                    # mid-size ECAPA, under 10 MB in fp16
    "titanet-s": lambda: _titanet("titanet-s", 256),
    "titanet-l": lambda: _titanet("titanet-l", 1024),
}


def preset(name: str, num_classes: int = 0, **decoder_overrides) -> ModelConfig:
    """A named architecture as a config. Override sizes by editing the returned dataclass or via decoder kwargs."""
    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}; choose from {sorted(PRESETS)}")
    cfg = PRESETS[name]()
    cfg.decoder = dataclasses.replace(cfg.decoder, num_classes=num_classes, **decoder_overrides)
    return cfg


def config_to_dict(cfg: ModelConfig) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> ModelConfig:
    """Rebuild a ModelConfig from plain data (as stored in a checkpoint), rejecting unknown fields."""
    enc = dict(d["encoder"])
    if enc.get("type", "jasper") == "jasper":
        enc["blocks"] = [BlockConfig(**b) for b in enc["blocks"]]
        encoder = JasperConfig(**enc)
    elif enc["type"] == "ecapa":
        encoder = EcapaConfig(**enc)
    else:
        raise ValueError(f"Unknown encoder type {enc['type']!r}")
    sa = d.get("spec_augment")
    return ModelConfig(
        name=str(d.get("name", "model")),
        features=FeatureConfig(**d["features"]),
        encoder=encoder,
        decoder=DecoderConfig(**d["decoder"]),
        spec_augment=SpecAugmentConfig(**sa) if sa else None,
    )


class SpeakerModel(nn.Module):
    """(B, N) 16 kHz waveforms + (B,) sample counts -> (B, D) raw (unnormalised) speaker embeddings."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.features = MelFeatures(cfg.features)
        if isinstance(cfg.encoder, EcapaConfig):
            self.encoder = EcapaEncoder(cfg.encoder)
        else:
            self.encoder = JasperEncoder(cfg.encoder)
        self.decoder = SpeakerDecoder(cfg.decoder)
        self.labels: list[str] = []
        self.meta: dict = {}

    @property
    def emb_dim(self) -> int:
        return self.decoder.emb_dim

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        feats, frames = self.features(wave, lengths)                        # (B, F, T), (B,)
        if self.training and self.config.spec_augment is not None:
            feats = spec_augment(feats, frames, self.config.spec_augment)
        enc, frames = self.encoder(feats, frames)                           # (B, C, T)
        return self.decoder(enc, frames)                                    # (B, D)

    @property
    def pieceable(self) -> bool:
        """Whether `embed_in_pieces` gives `forward`'s embedding: a Jasper encoder without SE, stats pooling."""
        return isinstance(self.encoder, JasperEncoder) and self.encoder.local and isinstance(self.decoder.pool, StatsPool)

    def embed_in_pieces(self, wave: torch.Tensor, piece_frames: int = 3000) -> torch.Tensor:
        """(1, N) waveform -> (1, D): `forward`'s embedding of one long clip in eval mode, with the encoder run over
        `piece_frames` frames at a time (plus its radius of context each side) and the statistics summed as it goes,
        so memory stays that of one piece instead of growing with the clip (SpeakerNet's 1500-channel epilog output
        alone is 0.6 MB per second of audio, and one pass holds several tensors of that size).

        >>> m = SpeakerModel(preset("speakernet-m")).eval()
        >>> w = torch.randn(1, 48000) * 0.1
        >>> torch.allclose(m.embed_in_pieces(w, 70), m(w, torch.tensor([48000])), atol=1e-4)
        True
        """
        if not self.pieceable or self.training or wave.shape[0] != 1:
            raise ValueError("embed_in_pieces needs one clip, eval mode and a SpeakerNet-style model (see pieceable)")
        feats, frames = self.features(wave, torch.tensor([wave.shape[1]], device=wave.device))  # (1, F, T)
        T, r = int(frames[0]), self.encoder.radius
        feats = feats[:, :, :T]
        total = torch.zeros(self.encoder.out_channels, dtype=torch.float64, device=wave.device)    # (C,)
        sq = torch.zeros_like(total)                                                              # (C,)
        for s in range(0, T, piece_frames):
            a, b = max(0, s - r), min(T, s + piece_frames + r)
            out, _ = self.encoder(feats[:, :, a:b], torch.tensor([b - a], device=wave.device))   # (1, C, b - a)
            piece = out[0, :, s - a : s - a + min(piece_frames, T - s)].double()                # (C, <= piece)
            total += piece.sum(-1)
            sq += piece.pow(2).sum(-1)
        mean = total / T                                                                          # (C,)
        var = (sq - T * mean.pow(2)) / (T - 1 if T > 1 else 1)                                   # unbiased, as StatsPool
        stats = torch.cat([mean, var.clamp(min=self.decoder.pool.eps).sqrt()])[None].float()     # (1, 2C)
        return self.decoder.from_pooled(stats)                                                   # (1, D)

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        return self.decoder.logits(emb)
