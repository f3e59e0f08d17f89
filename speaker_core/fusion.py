"""Score fusion: two or more of our checkpoints used as one model.

A fusion file holds no weights. It names its member checkpoints (files in the same folder, pinned by their SHA-256)
with a weight each, plus its own AS-norm cohort and calibration:

    {"format": "speaker_core/fusion-1", "members": [{"file": "ecapa-small.pt", "weight": 0.7, "sha256": "..."}, ...],
     "meta": {"score_norm": ..., "calibration": ..., "dev_eer": ...}}

The fused embedding is the concatenation of ``sqrt(w_i) * unit(e_i)``, so its cosine is ``sum_i w_i cos_i``: a
weighted sum of the members' cosines, which AS-norm then normalises against the members' concatenated cohorts. Each
member embeds as it always does (its own window and edge handling).

    python -m speaker_core fuse checkpoints/fused.pt checkpoints/ecapa-small.pt:0.7 checkpoints/speakernet-m.pt:0.3 \\
        --dev data/dev.jsonl
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .api import Recognizer, load_model
from .audio import speech_seconds
from .checkpoint import FUSION_FORMAT, CheckpointError, model_from_payload, read_payload
from .scoring import ScoreNorm, part_cut_of, parts_of, score_norm_of, threshold_of


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FusedRecognizer(Recognizer):
    """A `Recognizer` whose embedding is the weighted concatenation of its members' unit embeddings."""

    def __init__(self, members: list[tuple[Recognizer, float]], meta: dict, name: str):
        self.members = members
        self._meta = dict(meta)
        self.name = name
        self.device = members[0][0].device
        self.autocast = False
        self.window, self.edges = None, None   # each member applies its own
        try:
            threshold_of(self._meta)
            self.norm = score_norm_of(self._meta, self.emb_dim)
            self.parts = parts_of(self._meta)
            self.part_cut = part_cut_of(self._meta)
        except ValueError as e:
            raise CheckpointError(f"{name}: {e}") from None

    @property
    def meta(self) -> dict:
        return self._meta

    @property
    def emb_dim(self) -> int:
        return sum(m.emb_dim for m, _ in self.members)

    @property
    def config(self):
        raise AttributeError("a fusion has no single model config: see .members")

    @property
    def labels(self) -> list[str]:
        return []

    def parameters(self):
        for m, _ in self.members:
            yield from m.net.parameters()

    def _embed(self, waves: list[np.ndarray], batch_size: int | None = None) -> torch.Tensor:
        parts = [math.sqrt(w) * torch.nn.functional.normalize(m._embed(waves, batch_size), dim=-1)
                 for m, w in self.members]
        return torch.cat(parts, dim=-1)                                          # (N, sum of D)

    def embed_waves(self, waves, **kw) -> np.ndarray:
        """The batched path of `evaluate.embed_waves`, member by member (same numbers as `_embed`)."""
        from .evaluate import embed_waves
        from .scoring import l2_normalize

        parts = [math.sqrt(w) * l2_normalize(embed_waves(m.net, waves, window=m.window, edges=m.edges, **kw))
                 for m, w in self.members]
        return np.concatenate(parts, axis=1).astype(np.float32)


def _member_path(folder: Path, spec, name: str) -> tuple[Path, float, str]:
    if not isinstance(spec, dict):
        raise CheckpointError(f"{name}: malformed member entry.")
    file, weight, digest = spec.get("file"), spec.get("weight"), spec.get("sha256")
    # a bare file name in the fusion's own folder: no paths, so a fusion file cannot point anywhere else
    if not isinstance(file, str) or Path(file).name != file or file in ("", ".", "..") or not file.endswith(".pt"):
        raise CheckpointError(f"{name}: a member must be a .pt file name in the same folder, got {file!r}.")
    if not isinstance(weight, (int, float)) or not math.isfinite(weight) or not 0.0 < weight <= 1.0:
        raise CheckpointError(f"{name}: member {file} has an invalid weight {weight!r}.")
    if not isinstance(digest, str):
        raise CheckpointError(f"{name}: member {file} has no sha256.")
    return folder / file, float(weight), digest


def load_fusion(path, payload: dict | None = None, device=None) -> FusedRecognizer:
    """Load a fusion file and its members. Refused when a member is missing or is not the file it was calibrated
    with (its threshold and cohort would not fit)."""
    p = Path(path)
    payload = payload if payload is not None else read_payload(p)
    members_spec, meta = payload.get("members"), payload.get("meta")
    if not isinstance(members_spec, list) or len(members_spec) < 2 or not isinstance(meta, dict):
        raise CheckpointError(f"{p.name}: a fusion needs at least two members and its metadata.")
    members = []
    for spec in members_spec:
        mp, weight, digest = _member_path(p.parent, spec, p.name)
        if not mp.is_file():
            raise CheckpointError(f"{p.name} fuses {mp.name}, which is not in {p.parent}.")
        if file_sha256(mp) != digest:
            raise CheckpointError(f"{p.name} was calibrated with another {mp.name}: run `python -m speaker_core "
                                  "fuse` again to re-calibrate it for the current file.")
        member = read_payload(mp)
        if member.get("format") == FUSION_FORMAT:
            raise CheckpointError(f"{p.name}: member {mp.name} is itself a fusion.")
        members.append((Recognizer(model_from_payload(member, mp.name), device=device, name=mp.stem), weight))
    if abs(sum(w for _, w in members) - 1.0) > 1e-6:
        raise CheckpointError(f"{p.name}: member weights must add up to 1.")
    return FusedRecognizer(members, meta, name=p.stem)


def main_fuse(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core fuse", description="Write a fusion of calibrated checkpoints: "
                                 "fused AS-norm cohort, threshold and dev EERs.")
    ap.add_argument("out", help="the fusion file to write (in the members' folder)")
    ap.add_argument("members", nargs="+", metavar="CKPT:WEIGHT", help="member checkpoints and weights (sum 1)")
    ap.add_argument("--dev", required=True, help="dev manifest: calibration trials")
    ap.add_argument("--top-k", type=int, default=200)
    ap.add_argument("--crop-eval", type=float, default=2.0)
    ap.add_argument("--parts", type=float, default=0.0, metavar="SEC",
                    help="score long clips in parts of their words of about SEC seconds (audio.word_parts; "
                         "checkpoints/HISTORY.md, rule 45), here and wherever the fusion is used; 0: whole clips")
    ap.add_argument("--cut", choices=("time", "words"), default="time",
                    help="how --parts cuts a clip (audio.word_parts): 'time', equal-time parts (rule 45); 'words', "
                         "an equal share of the word frames each (rule 48)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from .evaluate import SR, dev_calibration, embed_parts, items_from_manifest, items_with_trials

    out = Path(a.out)
    specs, members, cohorts, sources = [], [], [], set()
    for arg in a.members:
        file, _, weight = arg.rpartition(":")
        mp = Path(file)
        if mp.parent.resolve() != out.parent.resolve():
            print(f"error: {mp} must be in the fusion's folder ({out.parent})", file=sys.stderr)
            return 2
        m = load_model(mp, device="cpu")
        if m.norm is None:
            print(f"error: {mp.name} has no AS-norm cohort: run `calibrate` on it first", file=sys.stderr)
            return 2
        sn = m.meta.get("score_norm") or {}
        sources.add((sn.get("cohort_speakers"), sn.get("cohort_source"), m.norm.cohort.shape[0]))
        members.append((m, float(weight)))
        specs.append({"file": mp.name, "weight": float(weight), "sha256": file_sha256(mp)})
        cohorts.append(math.sqrt(float(weight)) * m.norm.cohort)
    if len(sources) != 1:
        # the fused cohort concatenates member rows speaker by speaker: all must come from the same speakers
        print(f"error: the members' cohorts differ ({sorted(map(str, sources))}); calibrate them on one manifest",
              file=sys.stderr)
        return 2
    if a.parts and not 0.5 <= a.parts <= 30:
        print(f"error: --parts wants 0.5-30 seconds (or 0), got {a.parts:g}", file=sys.stderr)
        return 2
    if len(members) < 2 or abs(sum(w for _, w in members) - 1.0) > 1e-6:
        print("error: give two or more members whose weights add up to 1", file=sys.stderr)
        return 2
    fused = FusedRecognizer(members, {}, name=out.stem)
    norm = ScoreNorm(np.concatenate(cohorts, axis=1), top_k=a.top_k)
    t0 = time.time()
    with torch.no_grad():
        items, waves, trials = items_with_trials(items_from_manifest(a.dev))
        emb = fused.embed_waves(waves)
        emb2 = fused.embed_waves([w[:int(a.crop_eval * SR)] for w in waves]) if a.crop_eval else None
        parts = embed_parts(fused, waves, a.parts, emb=emb, cut_by=a.cut) if a.parts else None
    meta = {"created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "fusion": ", ".join(f"{s['weight']:g} x {s['file']}" for s in specs),
            "score_norm": {**norm.to_meta(), "cohort_speakers": next(iter(sources))[0],
                           "cohort_source": "the members' cohorts, concatenated with the fusion weights"}}
    if a.parts:
        meta["scoring"] = {"parts": float(a.parts), **({"cut": a.cut} if a.cut != "time" else {})}
    meta.update(dev_calibration(items, trials, emb, emb2, norm, a.crop_eval, a.bootstrap,
                                speech=np.array([speech_seconds(w) for w in waves]), parts=parts))
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save({"format": FUSION_FORMAT, "members": specs, "meta": meta}, tmp)
    os.replace(tmp, out)
    how = f"; scored in {a.parts:g} s parts ({a.cut})" if a.parts else ""
    print(f"wrote {out}: {meta['fusion']}{how}; threshold {meta['calibration']['threshold']:.3f}; dev EER mean "
          f"{meta['dev_eer']['mean_over_corpora']:.2f}%, pooled {meta['dev_eer']['pooled']:.2f}% in {time.time() - t0:.0f}s")
    return 0
