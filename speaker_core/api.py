"""The public API: `load_model` returns a `Recognizer` that embeds audio and verifies pairs.

The `SpeakerModel` network only sees tensors; everything that touches files lives here.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import (DETECTORS, MAX_SECONDS, SAMPLE_RATE, Clip, canonical_edges, load_clip, require_speech, windows,
                    word_parts)
from .checkpoint import FUSION_FORMAT, CheckpointError, load_checkpoint, model_from_payload, read_payload
from .model import SpeakerModel, config_to_dict
from .scoring import ScoreNorm, cosine, l2_normalize, part_cut_of, parts_of, score_norm_of, threshold_of

CHECKPOINT_DIR = Path(os.environ.get("SPEAKER_CORE_CHECKPOINTS", Path(__file__).resolve().parent.parent / "checkpoints"))
# The score fusion of both shipped models (0.7 x ecapa-small + 0.3 x speakernet-m, fusion.py): on the dev split it
# beats either model alone, for a second network per /verify (figures in checkpoints/README.md, the rules behind
# them in checkpoints/HISTORY.md). SPEAKER_DEFAULT_MODEL=ecapa-small (one model, faster) or speakernet-m (NeMo's
# classic default) choose another.
DEFAULT_MODEL = os.environ.get("SPEAKER_DEFAULT_MODEL") or "ecapa-speakernet-fusion"


WINDOW_CHUNK = 32   # windows per forward pass when a long clip is embedded window by window
PIECE_SECONDS = 30.0  # a whole-clip SpeakerNet embeds a longer clip this much at a time (SpeakerModel.embed_in_pieces)


class ModelNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint of that name or path exists."""


@dataclass
class VerifyResult:
    score: float          # on the checkpoint's scale (see scoring.py): AS-norm or cosine
    same_speaker: bool
    threshold: float


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def available_models(directory: Path | None = None) -> list[str]:
    """Names of the shipped checkpoints plus any .pt/.nemo file in the checkpoints folder."""
    d = Path(directory or CHECKPOINT_DIR)
    if not d.is_dir():
        return []
    return sorted(p.stem if p.suffix == ".pt" else p.name for p in d.iterdir() if p.suffix in (".pt", ".nemo") and p.is_file())


def resolve(name_or_path: str | os.PathLike | None) -> Path:
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    p = Path(os.fspath(name_or_path))
    if p.suffix in (".pt", ".nemo") and p.is_file():
        return p
    for cand in (CHECKPOINT_DIR / f"{p.name}.pt", CHECKPOINT_DIR / p.name):
        if cand.is_file():
            return cand
    if p.suffix in (".pt", ".nemo"):
        raise ModelNotFoundError(f"Checkpoint file not found: {p}")
    raise ModelNotFoundError(
        f"No checkpoint named {str(name_or_path)!r} in {CHECKPOINT_DIR}. Shipped: {available_models() or 'none yet'}. "
        "Train one with `python -m speaker_core train configs/ecapa-small.yaml`, or pass a path to a .pt or .nemo file."
    )


def window_of(meta: dict) -> tuple[float, float] | None:
    """The checkpoint's embedding window ``(window, hop)`` in seconds, or None to embed whole clips.

    Ours store ``meta["embedding"] = {"window": 3.0, "hop": 1.5}`` (set by ``calibrate``): a model trained on 2-3 s
    crops describes a long clip better as the mean of its 3 s windows than in one pass. NeMo imports have none,
    so they embed whole clips exactly as NeMo's get_embedding does.
    """
    e = (meta or {}).get("embedding")
    if not e:
        return None
    try:
        w, h = float(e["window"]), float(e["hop"])
    except (TypeError, KeyError, ValueError):
        raise ValueError("meta['embedding'] must hold numeric 'window' and 'hop' seconds") from None
    if not (0.5 <= w <= 60.0 and 0.0 < h <= w):
        raise ValueError(f"embedding window {w} s / hop {h} s out of range (0.5-60 s, 0 < hop <= window)")
    return w, h


def edges_of(meta: dict) -> dict | None:
    """The checkpoint's edge silence handling: ``canonical_edges`` keyword arguments, or None to embed clips as
    they are. Ours may store ``meta["edges"] = {"keep": 0.2, "pad": 1.5, "db": -50.0, "detector": "words"}`` (set
    by ``calibrate --edges canonical``, which calibrates the threshold and cohort the same way); NeMo imports never
    do. Without "detector" (session 11's files) the edges are found with ``audio.active_frames``."""
    e = (meta or {}).get("edges")
    if not e:
        return None
    try:
        out = {"keep": float(e["keep"]), "pad": float(e["pad"]), "db": float(e["db"])}
    except (TypeError, KeyError, ValueError):
        raise ValueError("meta['edges'] must hold numeric 'keep', 'pad' and 'db'") from None
    if not (0.0 <= out["keep"] <= 5.0 and 0.0 <= out["pad"] <= 10.0 and -120.0 <= out["db"] <= -10.0):
        raise ValueError(f"edges {out} out of range (keep 0-5 s, pad 0-10 s, db -120 to -10 dBFS)")
    if "detector" in e:   # only when named, so that session 11's files keep their model ids
        if e["detector"] not in DETECTORS:
            raise ValueError(f"meta['edges']['detector'] must be one of {sorted(DETECTORS)}, "
                             f"not {str(e['detector'])[:40]!r}")
        out["detector"] = e["detector"]
    return out


class Recognizer:
    """A loaded speaker model with audio-level methods.

    >>> # rec = load_model(); rec.verify("a.wav", "b.wav").same_speaker
    """

    def __init__(self, net: SpeakerModel, device=None, name: str | None = None):
        self.device = torch.device(device) if device is not None else default_device()
        self.net = net.to(self.device).eval()
        self.name = name or net.config.name
        self.autocast = False  # opt-in fp16/bf16 on CUDA; the features and SE always stay fp32
        try:
            threshold_of(self.meta)   # a malformed calibration is refused here, not at the first request
            self.norm: ScoreNorm | None = score_norm_of(self.meta, self.emb_dim)
            self.window = window_of(self.meta)
            self.edges = edges_of(self.meta)
            self.parts = parts_of(self.meta)
            self.part_cut = part_cut_of(self.meta)
        except ValueError as e:
            raise CheckpointError(f"{self.name}: {e}") from None

    @property
    def config(self):
        return self.net.config

    @property
    def model_id(self) -> str:
        """Name plus a hash of what the embeddings depend on: a gallery never mixes voiceprints of different
        weights, and the app and the command line label the same model alike."""
        return f"{self.name}@{embedding_digest(self)}"

    @property
    def labels(self) -> list[str]:
        return self.net.labels

    @property
    def meta(self) -> dict:
        return self.net.meta

    @property
    def emb_dim(self) -> int:
        return self.net.emb_dim

    @property
    def scale(self) -> str:
        """"as-norm" when the checkpoint carries a cohort and a threshold for it, else "cosine"."""
        return "as-norm" if self.norm is not None else "cosine"

    @property
    def threshold(self) -> float:
        """Calibrated threshold (dev-set EER point, on `scale`) when the checkpoint has one, else DEFAULT_THRESHOLD."""
        return threshold_of(self.meta)

    def _forward(self, waves: list[np.ndarray]) -> torch.Tensor:
        lengths = torch.tensor([w.size for w in waves], dtype=torch.long)
        batch = torch.zeros(len(waves), int(lengths.max()), dtype=torch.float32)
        for i, w in enumerate(waves):
            batch[i, : w.size] = torch.from_numpy(w)
        batch, lengths = batch.to(self.device, non_blocking=True), lengths.to(self.device)
        use_amp = self.autocast and self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=use_amp):
            return self.net(batch, lengths).float()                               # (B, D)

    def _forward_pieces(self, wave: np.ndarray) -> torch.Tensor:
        """(1, D) for one long clip through `SpeakerModel.embed_in_pieces`: the same embedding as `_forward`, with
        the memory of a PIECE_SECONDS clip: a 10-minute clip through the shipped speakernet-m peaked at 2.1 GB
        of RSS in one pass and at 0.96 GB in pieces, its first three components agreeing to 5e-8."""
        hop = self.net.features.cfg.hop_length
        x = torch.from_numpy(wave)[None].to(self.device)
        use_amp = self.autocast and self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=use_amp):
            return self.net.embed_in_pieces(x, int(PIECE_SECONDS * SAMPLE_RATE) // hop).float()   # (1, D)

    @staticmethod
    def _finish(emb: torch.Tensor, normalize: bool) -> np.ndarray:
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb.cpu().numpy().astype(np.float32, copy=False)

    def _embed(self, waves: list[np.ndarray], batch_size: int | None = None) -> torch.Tensor:
        """(N, D): one pass per clip, or for a windowed checkpoint the mean of a long clip's unit window embeddings.
        A checkpoint with ``edges`` (``edges_of``) first gives every clip the same silence around its words."""
        # On CPU padding costs more than batching saves (measured in benchmarks/bench_embed.py): one clip at a time.
        batch_size = batch_size or (64 if self.device.type == "cuda" else 1)
        if self.edges:
            waves = [canonical_edges(w, **self.edges) for w in waves]
        out = torch.empty(len(waves), self.emb_dim)
        whole = []
        for i, w in enumerate(waves):
            segs = windows(w, *self.window) if self.window else [w]
            if len(segs) > 1:  # equal lengths, no padding; in chunks, because memory grows with the batch: a
                # 10-minute clip peaked at 3.6 GB in one batch of 399 windows and at 1.0 GB in chunks of 32
                total = torch.zeros(self.emb_dim)
                for s in range(0, len(segs), WINDOW_CHUNK):
                    total += torch.nn.functional.normalize(self._forward(segs[s:s + WINDOW_CHUNK]), dim=-1).sum(0).cpu()
                out[i] = total / len(segs)
            elif w.size > PIECE_SECONDS * SAMPLE_RATE and self.net.pieceable:
                out[i] = self._forward_pieces(w)[0].cpu()
            else:
                whole.append(i)
        order = sorted(whole, key=lambda i: waves[i].size)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            out[torch.as_tensor(idx)] = self._forward([waves[i] for i in idx]).cpu()
        return out

    def embed(self, waveform, sample_rate: int = SAMPLE_RATE, normalize: bool = True) -> np.ndarray:
        """Embed one waveform at any sample rate -> (D,) float32 (L2-normalised unless normalize=False)."""
        clip = load_clip(waveform, sample_rate=sample_rate)
        return self._finish(self._embed([clip.wave])[0], normalize)

    def embed_file(self, path, normalize: bool = True) -> np.ndarray:
        """Embed an audio file -> (D,) float32: in one pass, as NeMo's get_embedding does, unless the checkpoint
        has an embedding window (``window_of``). A SpeakerNet clip over PIECE_SECONDS goes through in pieces with
        the same result (``SpeakerModel.embed_in_pieces``)."""
        return self._finish(self._embed([load_clip(path).wave])[0], normalize)

    def embed_clip(self, clip: Clip, normalize: bool = True) -> np.ndarray:
        return self._finish(self._embed([clip.wave])[0], normalize)

    def embed_batch(self, items, normalize: bool = True, batch_size: int | None = None) -> np.ndarray:
        """Embed paths, `(wave, sr)` pairs or Clips -> (N, D). Batches are length-sorted; padding never leaks."""
        waves = [load_clip(it).wave for it in items]
        if not waves:
            return np.zeros((0, self.emb_dim), np.float32)
        return self._finish(self._embed(waves, batch_size), normalize)

    def compare(self, ea, eb) -> float:
        """Score two embeddings on this checkpoint's scale (AS-norm when it has a cohort, else cosine)."""
        if self.norm is not None:
            return self.norm.pair(ea, eb)
        return float(np.clip(cosine(ea, eb), -1.0, 1.0))

    def compare_many(self, query, prints) -> np.ndarray:
        """One embedding (D,) against N voiceprints (N, D) -> (N,) scores on this checkpoint's scale."""
        prints = np.atleast_2d(prints)
        if self.norm is not None:
            return self.norm.against(query, prints)
        return np.clip(cosine(prints, np.broadcast_to(query, prints.shape)), -1.0, 1.0)

    def compare_parts(self, pa, pb) -> float:
        """Score two clips given as their parts' embeddings (ka, D) and (kb, D): the mean over the part pairs."""
        if self.norm is not None:
            return self.norm.mean_pair(pa, pb)
        return float(np.clip(l2_normalize(np.atleast_2d(pa)) @ l2_normalize(np.atleast_2d(pb)).T, -1.0, 1.0).mean())

    def embed_parts(self, item) -> np.ndarray:
        """(k, D) unit embeddings of a clip's parts (``audio.word_parts``) when the checkpoint scores in parts
        (``self.parts``), else (1, D): the clip's embedding."""
        wave = load_clip(item).wave
        return self._finish(self._embed(word_parts(wave, self.parts, self.part_cut) if self.parts else [wave]), True)

    def score(self, a, b) -> float:
        """Score two clips (paths, `(wave, sr)` pairs or Clips) on this checkpoint's scale. A checkpoint that
        scores in parts (``scoring.parts_of``) averages over the pairs of the clips' parts; any other has one part
        per clip, its whole embedding, so this is ``compare`` of the two embeddings."""
        return self.compare_parts(self.embed_parts(a), self.embed_parts(b))

    def verify(self, a, b, threshold: float | None = None, max_seconds: float | None = MAX_SECONDS) -> VerifyResult:
        """Same speaker when score >= threshold (the checkpoint's calibrated threshold by default). A clip of faint
        noise is refused with ``audio.NoSpeechError`` instead of scored: two of them would embed alike and match.
        As in the app and the CLI, only the first ``max_seconds`` of a file or waveform are used (None: all of it).
        Clip objects are used as they are."""
        t = self.threshold if threshold is None else float(threshold)
        s = self.score(*(require_speech(load_clip(x, max_seconds=max_seconds)) for x in (a, b)))
        return VerifyResult(score=s, same_speaker=s >= t, threshold=t)


def embedding_digest(model: Recognizer) -> str:
    """10 hex digits of a hash over what a clip's embedding depends on: config, weights, embedding window and edge
    handling. Calibration, cohort and metadata are left out: they change scores, not the stored voiceprints."""
    members = getattr(model, "members", None)
    if members:   # a fusion: its members' ids and weights
        joined = ",".join(f"{embedding_digest(m)}*{w:g}" for m, w in members)
        return hashlib.sha256(joined.encode()).hexdigest()[:10]
    what = {"config": config_to_dict(model.config), "window": model.window}
    if model.edges:   # only when set, so that the ids of checkpoints without it stay what they were
        what["edges"] = model.edges
    h = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode())
    for k, v in sorted(model.net.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:10]


def load_model(name_or_path=None, device=None) -> Recognizer:
    """Load a shipped checkpoint by name ("speakernet-m", "ecapa-small"), or a `.pt` / `.nemo` file by path. A fusion
    file (`fusion.py`) loads its members and returns a `FusedRecognizer`.

    With no argument, loads the default: checkpoints/ecapa-speakernet-fusion.pt (a fusion of the two shipped
    checkpoints), or $SPEAKER_DEFAULT_MODEL.
    """
    path = resolve(name_or_path)
    if path.suffix == ".pt":
        payload = read_payload(path)
        if payload.get("format") == FUSION_FORMAT:
            from .fusion import load_fusion   # fusion.py builds on this module

            return load_fusion(path, payload, device)
        return Recognizer(model_from_payload(payload, path.name), device=device, name=path.stem)
    return Recognizer(load_checkpoint(path), device=device, name=path.name)
