"""Optional knowledge distillation from a pretrained teacher (resemblyzer's GE2E encoder).

The teacher is a dev-only dependency (``pip install webrtcvad-wheels librosa`` then
``pip install --no-deps resemblyzer``); it is never needed at inference time and is not in requirements.txt.

One teacher embedding per training file (whole utterance, clean) is precomputed by
``tools/prepare_teacher.py`` into ``data/teacher.npy`` (rows in manifest order). During training an
auxiliary loss ``lambda * (1 - cos(proj(student_emb), teacher_emb))`` is added, where ``proj`` is a small
Linear layer that lives outside the model and is dropped at export.
"""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TEACHER_DIM = 256
TEACHER_SR = 16000


def resemblyzer_encoder(device: str = "cpu"):
    """The pretrained resemblyzer VoiceEncoder (raises ImportError with an install hint if missing)."""
    try:
        from resemblyzer import VoiceEncoder  # type: ignore
    except ImportError as e:  # pragma: no cover
        raise ImportError("distillation needs resemblyzer (dev only): pip install webrtcvad-wheels librosa && "
                          "pip install --no-deps resemblyzer") from e
    return VoiceEncoder(device, verbose=False)


def teacher_embed(encoder, wave: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Whole-utterance resemblyzer embedding (L2-normalised, 256-d) of a mono float wave."""
    from resemblyzer import preprocess_wav  # type: ignore
    w = preprocess_wav(np.asarray(wave, dtype=np.float32), source_sr=sr)
    if len(w) < int(0.3 * TEACHER_SR):  # VAD removed nearly everything: fall back to the raw wave
        w = np.asarray(wave, dtype=np.float32)
        if sr != TEACHER_SR:
            import librosa  # type: ignore
            w = librosa.resample(w, orig_sr=sr, target_sr=TEACHER_SR)
        peak = np.abs(w).max() if len(w) else 0.0
        if peak > 0:
            w = w / peak * 0.5
    e = encoder.embed_utterance(w)
    return np.asarray(e, dtype=np.float32)


def compute_teacher_embeddings(waves: Iterable[np.ndarray], encoder=None, sr: int = 16000,
                               progress: bool = False) -> np.ndarray:
    encoder = encoder or resemblyzer_encoder()
    it = waves
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="teacher", mininterval=10)
    out = [teacher_embed(encoder, w, sr) for w in it]
    return np.stack(out).astype(np.float32) if out else np.zeros((0, TEACHER_DIM), np.float32)


def load_teacher(path: str, n_rows: Optional[int] = None) -> torch.Tensor:
    t = np.load(path)
    if n_rows is not None and len(t) != n_rows:
        raise ValueError(f"{path} has {len(t)} teacher embeddings but the manifest has {n_rows} rows; "
                         "rerun tools/prepare_teacher.py")
    return F.normalize(torch.from_numpy(np.asarray(t, dtype=np.float32)), dim=-1)


class DistillHead(nn.Module):
    """Projection student -> teacher space and the cosine distillation loss. Not part of the exported model."""

    def __init__(self, student_dim: int, teacher_dim: int = TEACHER_DIM):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
        p = F.normalize(self.proj(student_emb.float()), dim=-1)
        t = F.normalize(teacher_emb.float(), dim=-1)
        return (1.0 - (p * t).sum(-1)).mean()
