"""NeMo's SpeakerDecoder (pooling + embedding layers + classifier) and the angular-margin softmax loss.

The embedding is the output of the LAST embedding layer: for x-vector ("linear") layers that is Linear -> BN
(affine-free) before the ReLU; for attention ("conv") layers it is BN -> 1x1 conv. NeMo's docstring says "first";
its code takes the last.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .pooling import AttentivePool, StatsPool


@dataclass
class DecoderConfig:
    feat_in: int = 1500
    emb_sizes: list[int] = field(default_factory=lambda: [256])
    pool_mode: str = "xvector"          # "xvector" (stats) or "attention"
    attention_channels: int = 128
    num_classes: int = 0                # 0: no classifier head (exported inference checkpoints)
    angular: bool = True                # classifier input L2-normalised, no bias
    normalize_weight: bool = False      # NeMo never normalises W (a no-op bug); our own training does


class EmbeddingLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "linear":
            self.fc = nn.Linear(cin, cout)
            self.bn = nn.BatchNorm1d(cout, affine=False)
        else:
            self.bn = nn.BatchNorm1d(cin)
            self.fc = nn.Conv1d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            return self.bn(self.fc(x))                                     # (B, cout)
        return self.fc(self.bn(x[:, :, None]))[:, :, 0]                     # (B, cout)


class SpeakerDecoder(nn.Module):
    """(B, C, T) encoder output + (B,) lengths -> (B, D) embedding. `logits(emb)` gives the classifier output."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.pool_mode == "xvector":
            self.pool, kind = StatsPool(cfg.feat_in), "linear"
        elif cfg.pool_mode == "attention":
            self.pool, kind = AttentivePool(cfg.feat_in, cfg.attention_channels), "conv"
        else:
            raise ValueError(f"Unsupported pool_mode {cfg.pool_mode!r} (expected 'xvector' or 'attention').")
        self.kind = kind
        sizes = [self.pool.out_dim] + list(cfg.emb_sizes)
        self.layers = nn.ModuleList(EmbeddingLayer(a, b, kind) for a, b in zip(sizes[:-1], sizes[1:]))
        self.emb_dim = sizes[-1]
        self.final = nn.Linear(self.emb_dim, cfg.num_classes, bias=not cfg.angular) if cfg.num_classes else None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.from_pooled(self.pool(x, lengths))                     # (B, D)

    def from_pooled(self, h: torch.Tensor) -> torch.Tensor:
        """(B, 2C) pooled statistics -> (B, D) embedding."""
        for layer in self.layers:
            emb = layer(h)
            h = F.relu(emb) if self.kind == "linear" else emb
        return emb

    def classifier_input(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, D) embedding -> (B, D) what the classifier's weight rows are compared with."""
        h = F.relu(emb) if self.kind == "linear" else emb                  # the classifier sees post-ReLU input
        return F.normalize(h, dim=1) if self.cfg.angular else h

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        if self.final is None:
            raise RuntimeError("This checkpoint has no classifier head (it was exported for inference).")
        h = self.classifier_input(emb)
        w = F.normalize(self.final.weight, dim=1) if self.cfg.normalize_weight else self.final.weight
        return F.linear(h, w, self.final.bias)


class AngularMarginLoss(nn.Module):
    """Additive angular margin softmax (ArcFace form), as NeMo's AngularSoftmaxLoss: cos(theta_y + m) * s.

    With `topk` > 0, the cosines of each sample's `topk` highest-scoring wrong classes get `topk_margin` added
    (the inter-top-k penalty), so the loss works hardest on the nearest other speakers. NeMo has no such term;
    the default (0) is NeMo's loss.

    >>> loss = AngularMarginLoss()(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 1]))
    >>> float(loss) > 0
    True
    """

    def __init__(self, scale: float = 30.0, margin: float = 0.2, eps: float = 1e-7, topk: int = 0,
                 topk_margin: float = 0.0):
        super().__init__()
        self.scale, self.margin, self.eps = scale, margin, eps
        self.topk, self.topk_margin = int(topk), float(topk_margin)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = logits.gather(1, labels[:, None]).clamp(-1 + self.eps, 1 - self.eps)
        numerator = self.scale * torch.cos(torch.acos(target) + self.margin)        # (B, 1)
        if self.topk > 0 and self.topk_margin:
            wrong = logits.detach().scatter(1, labels[:, None], float("-inf"))          # (B, N)
            nearest = wrong.topk(min(self.topk, logits.shape[1] - 1), dim=1).indices   # (B, k)
            logits = logits.scatter_add(1, nearest, torch.full(nearest.shape, self.topk_margin,
                                                                dtype=logits.dtype, device=logits.device))
        z = (self.scale * logits).scatter(1, labels[:, None], numerator)
        # Same as NeMo's numerator - log(exp(numerator) + sum_{j!=y} exp(s*l_j)), via a stable logsumexp.
        return F.cross_entropy(z, labels)
