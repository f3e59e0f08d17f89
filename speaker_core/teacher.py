"""Optional knowledge distillation from a pretrained teacher (resemblyzer's GE2E encoder).

The teacher is a dev-only dependency (``pip install webrtcvad-wheels librosa`` then
``pip install --no-deps resemblyzer``); it is never needed at inference time and is not in requirements.txt.

The teacher's embeddings are precomputed by ``tools/prepare_teacher.py`` from the clean audio, either one per
training file (whole utterance, ``data/teacher.npy``, rows in manifest order) or one per window of each file
(``--crops``: windows of ``win`` samples every ``hop`` samples, ``data/teacher_crops.npz``). With windows, each
training crop is distilled towards the window whose centre is nearest its own, so the target describes the audio
the student hears rather than the file it came from. During training an auxiliary loss
``lambda * (1 - cos(proj(student_emb), teacher_emb))`` is added, where ``proj`` is a small Linear layer that lives
outside the model and is dropped at export.
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


def _teacher_input(wave: np.ndarray, sr: int = 16000) -> np.ndarray:
    """The wave as resemblyzer wants it: its own volume normalisation and silence trimming, 16 kHz."""
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
    return w


def teacher_embed(encoder, wave: np.ndarray, sr: int = 16000) -> np.ndarray:
    """Whole-utterance resemblyzer embedding (L2-normalised, 256-d) of a mono float wave."""
    return np.asarray(encoder.embed_utterance(_teacher_input(wave, sr)), dtype=np.float32)


def teacher_embed_many(encoder, waves: list, sr: int = 16000) -> np.ndarray:
    """``teacher_embed`` of each wave, with the partial utterances of all of them in one forward: (N, 256).

    Each wave is cut into partials exactly as ``embed_utterance`` cuts it, so the result is the same up to float
    rounding; only the model runs once per call instead of once per wave.
    """
    from resemblyzer import audio  # type: ignore
    mels, owner = [], []
    for k, wave in enumerate(waves):
        w = _teacher_input(wave, sr)
        wav_slices, mel_slices = encoder.compute_partial_slices(len(w), 1.3, 0.75)
        if wav_slices[-1].stop >= len(w):
            w = np.pad(w, (0, wav_slices[-1].stop - len(w)))
        mel = audio.wav_to_mel_spectrogram(w)
        mels += [mel[sl] for sl in mel_slices]
        owner += [k] * len(mel_slices)
    with torch.no_grad():
        part = encoder(torch.from_numpy(np.array(mels)).to(encoder.device)).cpu().double()   # (P, 256)
    owner_t = torch.tensor(owner)
    mean = torch.zeros(len(waves), part.shape[1], dtype=torch.float64).index_add_(0, owner_t, part)
    return F.normalize(mean, dim=-1).numpy().astype(np.float32)


def compute_teacher_embeddings(waves: Iterable[np.ndarray], encoder=None, sr: int = 16000,
                               progress: bool = False) -> np.ndarray:
    encoder = encoder or resemblyzer_encoder()
    it = waves
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc="teacher", mininterval=10)
    out = [teacher_embed(encoder, w, sr) for w in it]
    return np.stack(out).astype(np.float32) if out else np.zeros((0, TEACHER_DIM), np.float32)


def window_starts(n: int, win: int, hop: int) -> np.ndarray:
    """Start samples of the teacher's windows over an ``n``-sample file (one window, the whole file, if it is short).

    >>> window_starts(100, 40, 20).tolist(), window_starts(30, 40, 20).tolist()
    ([0, 20, 40, 60], [0])
    """
    if n <= win:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, n - win + 1, hop, dtype=np.int64)


class TeacherTable:
    """Unit teacher embeddings ``(M, D)`` with file ``i``'s windows at rows ``first[i] : first[i] + count[i]``.

    ``hop == 0`` means one embedding per file. ``lookup(idx, centres)`` picks, per batch item, the window of file
    ``idx`` whose centre is nearest the crop's centre (in the file's samples).
    """

    def __init__(self, emb: torch.Tensor, count: np.ndarray, hop: int = 0, win: int = 0):
        count = np.asarray(count, dtype=np.int64)
        if count.ndim != 1 or (count < 1).any() or int(count.sum()) != len(emb):
            raise ValueError("teacher table: window counts do not add up to the embeddings")
        self.emb = F.normalize(emb.float(), dim=-1)                         # (M, D)
        self.first = torch.from_numpy(np.concatenate([[0], np.cumsum(count)[:-1]]))  # (N,)
        self.count = torch.from_numpy(count)                                # (N,)
        self.hop, self.win = int(hop), int(win)

    def __len__(self) -> int:
        return len(self.count)

    @property
    def dim(self) -> int:
        return int(self.emb.shape[1])

    def to(self, device) -> "TeacherTable":
        self.emb, self.first, self.count = self.emb.to(device), self.first.to(device), self.count.to(device)
        return self

    def lookup(self, idx: torch.Tensor, centres: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B,) file indices and (B,) crop centres in samples -> (B, D) teacher embeddings."""
        idx = idx.to(self.first.device)
        if self.hop <= 0 or centres is None:
            return self.emb[self.first[idx]]
        j = torch.round((centres.to(self.first.device).double() - self.win / 2) / self.hop).long()
        j = torch.minimum(j.clamp_min(0), self.count[idx] - 1)
        return self.emb[self.first[idx] + j]


def load_teacher(path: str, n_rows: Optional[int] = None, cache_key: Optional[str] = None,
                 edged: bool = False) -> TeacherTable:
    """``.npy``: one embedding per file; ``.npz`` (``emb``, ``count``, ``hop``, ``win``): windows of each file.
    A window table that records the key of the audio cache it was made from must match ``cache_key``: its
    windows are positions in that audio. For an ``edged`` cache the table must record it (tables made before
    session 26 record none, and they were all made from clips without edges)."""
    if str(path).endswith(".npz"):
        with np.load(path) as z:
            emb, count, hop, win = z["emb"], z["count"], int(z["hop"]), int(z["win"])
            made_from = str(z["cache_key"]) if "cache_key" in z.files else None
        if cache_key is not None and made_from != cache_key and (made_from is not None or edged):
            raise ValueError(f"{path} was made from other audio than this run's training cache (edges differ?); "
                             "rerun tools/prepare_teacher.py --crops with the run's --edges")
    else:
        emb = np.load(path)
        count, hop, win = np.ones(len(emb), dtype=np.int64), 0, 0
    if n_rows is not None and len(count) != n_rows:
        raise ValueError(f"{path} has teacher embeddings for {len(count)} files but the manifest has {n_rows} "
                         "rows; rerun tools/prepare_teacher.py")
    return TeacherTable(torch.from_numpy(np.asarray(emb, dtype=np.float32)), count, hop, win)


class DistillHead(nn.Module):
    """Projection student -> teacher space and the cosine distillation loss. Not part of the exported model."""

    def __init__(self, student_dim: int, teacher_dim: int = TEACHER_DIM):
        super().__init__()
        self.proj = nn.Linear(student_dim, teacher_dim)

    def forward(self, student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
        p = F.normalize(self.proj(student_emb.float()), dim=-1)
        t = F.normalize(teacher_emb.float(), dim=-1)
        return (1.0 - (p * t).sum(-1)).mean()
