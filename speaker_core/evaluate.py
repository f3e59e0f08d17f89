"""Speaker-verification evaluation: EER and minDCF(p=0.01) per set and pooled, a PNG and a JSON.

Inputs (``python -m speaker_core evaluate CHECKPOINT INPUT``; or ``python -m speaker_core.evaluate``):

* a trials file: one ``enroll_path test_path label`` per line (label 1/0 or target/nontarget); relative
  paths are resolved against the file's folder. All trials form one set ``trials``.
* a folder laid out ``<set>/<speaker>/<clip>``: trials are built within each set.
* a JSON-lines manifest (``audio_filepath``, ``label`` and ``corpus``): sets are the corpora.

Trials built from a folder or a manifest: all same-speaker pairs plus a seeded sample of different-speaker
pairs (at most ``--max-nontarget`` per set, 20k by default). A speaker who has a single file in a set has no
target pair; with ``--split-single SEC`` (default 4 s) such a file, if at least 2*SEC long, is cut into two
halves that act as two utterances (LibriSpeech in our pool has one clip per speaker). ``--crop SEC`` embeds
only the first SEC seconds of every utterance (to measure short-clip behaviour).

Every utterance is embedded once, whole (no chunking), in batches of similar length (the model masks padding
with the true lengths). Scores are on the checkpoint's scale (speaker_core.scoring): AS-norm when it carries a
cohort, else cosine; ``--cosine`` forces raw cosines.

``python -m speaker_core calibrate CHECKPOINT --train TRAIN.jsonl --dev DEV.jsonl`` gives a checkpoint its
AS-norm cohort (one voiceprint per *training* speaker) and re-calibrates its threshold, score distributions
and dev EERs on that scale, in place.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .api import edges_of, window_of
from .audio import CANONICAL_EDGES, canonical_edges, edge_silence, speech_seconds, windows, word_parts
from .scoring import (LONG_PAIR_SECONDS, ScoreNorm, bootstrap_eer, l2_normalize, part_cut_of, parts_of, plot_scores, scale_of,
                      score_norm_of, summarize_scores)

AUDIO_EXT = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".aif", ".aiff"}
SR = 16000


# --------------------------------------------------------------------------------------------
# utterance lists and trials
# --------------------------------------------------------------------------------------------
def items_from_manifest(path: str) -> List[dict]:
    from .data import read_manifest
    return [{"path": r["audio_filepath"], "speaker": r["label"], "set": r.get("corpus", "default")}
            for r in read_manifest(path)]


def items_from_folder(root: str) -> List[dict]:
    items = []
    for s in sorted(os.listdir(root)):
        sd = os.path.join(root, s)
        if not os.path.isdir(sd):
            continue
        for spk in sorted(os.listdir(sd)):
            pd = os.path.join(sd, spk)
            if not os.path.isdir(pd):
                continue
            for dirpath, _, files in sorted(os.walk(pd)):
                for f in sorted(files):
                    if os.path.splitext(f)[1].lower() in AUDIO_EXT:
                        items.append({"path": os.path.join(dirpath, f), "speaker": f"{s}/{spk}", "set": s})
    return items


def read_trials(path: str) -> Tuple[List[dict], List[Tuple[int, int, int]]]:
    base = os.path.dirname(os.path.abspath(path))
    index: Dict[str, int] = {}
    items: List[dict] = []
    trials = []

    def idx(p):
        p = p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))
        if p not in index:
            index[p] = len(items)
            items.append({"path": p, "speaker": None, "set": "trials"})
        return index[p]

    with open(path) as f:
        for ln in f:
            parts = ln.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 3:
                raise ValueError(f"bad trial line: {ln!r}")
            a, b, lab = parts[0], parts[1], parts[2].lower()
            # accept both "enroll test label" and Kaldi/Vox "label enroll test"
            if a.lower() in ("0", "1", "target", "nontarget") and lab not in ("0", "1", "target", "nontarget"):
                a, b, lab = parts[1], parts[2], parts[0].lower()
            y = 1 if lab in ("1", "target", "true", "same") else 0
            trials.append((idx(a), idx(b), y))
    return items, trials


def split_single_items(items: List[dict], durations: Sequence[float], min_half: float) -> Tuple[List[dict], List[float]]:
    """Cut files of single-file speakers (per set) into two halves when each half has >= min_half seconds."""
    count = defaultdict(int)
    for it in items:
        count[(it["set"], it["speaker"])] += 1
    out, durs = [], []
    for it, d in zip(items, durations):
        if count[(it["set"], it["speaker"])] == 1 and d >= 2 * min_half:
            h = d / 2.0
            out.append(dict(it, segment=(0.0, h)))
            out.append(dict(it, segment=(h, d)))
            durs += [h, d - h]
        else:
            out.append(it)
            durs.append(d)
    return out, durs


def items_with_trials(items: List[dict], split_single: float = 4.0, max_nontarget: int = 20000, seed: int = 0
                      ) -> Tuple[List[dict], List[np.ndarray], Dict[str, list]]:
    """Load the items' audio once, split single-file speakers' long files (``split_single`` s, 0: off) and build
    the within-set trials. Returns (items, waves, trials_by_set)."""
    waves = load_item_waves(items)
    if split_single and split_single > 0:
        loaded = {it["path"]: w for it, w in zip(items, waves)}
        items, _ = split_single_items(items, [len(w) / SR for w in waves], split_single)
        waves = load_item_waves(items, loader=loaded.__getitem__)   # cut the halves, no second read
    return items, waves, build_trials(items, max_nontarget, seed)


def build_trials(items: Sequence[dict], max_nontarget: int = 20000, seed: int = 0,
                 max_target: Optional[int] = None) -> Dict[str, List[Tuple[int, int, int]]]:
    """Trials within each set: all same-speaker pairs, and a seeded sample of different-speaker pairs."""
    by_set: Dict[str, List[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_set[it["set"]].append(i)
    rng = np.random.RandomState(seed)
    out = {}
    for s in sorted(by_set):
        idx = by_set[s]
        spk = np.array([items[i]["speaker"] for i in idx], dtype=object)
        tgt = []
        groups: Dict[str, List[int]] = defaultdict(list)
        for i in idx:
            groups[items[i]["speaker"]].append(i)
        for g in groups.values():
            for a in range(len(g)):
                for b in range(a + 1, len(g)):
                    tgt.append((g[a], g[b], 1))
        if max_target is not None and len(tgt) > max_target:
            sel = rng.choice(len(tgt), max_target, replace=False)
            tgt = [tgt[k] for k in sorted(sel)]
        n = len(idx)
        n_non_total = n * (n - 1) // 2 - sum(len(g) * (len(g) - 1) // 2 for g in groups.values())
        non = []
        if n_non_total <= max_nontarget:
            for a in range(n):
                for b in range(a + 1, n):
                    if spk[a] != spk[b]:
                        non.append((idx[a], idx[b], 0))
        else:
            seen = set()
            while len(non) < max_nontarget:
                a, b = rng.randint(n, size=2)
                if a == b or spk[a] == spk[b]:
                    continue
                key = (min(a, b), max(a, b))
                if key in seen:
                    continue
                seen.add(key)
                non.append((idx[key[0]], idx[key[1]], 0))
            non.sort()
        out[s] = tgt + non
    return out


# --------------------------------------------------------------------------------------------
# embedding
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def embed_waves(model, waves: Sequence[np.ndarray], batch_size: int = 16, device=None,
                max_batch_samples: int = 16000 * 120, progress: bool = False,
                window: Optional[Tuple[float, float]] = None, edges: Optional[dict] = None) -> np.ndarray:
    """Whole-utterance embeddings (raw, not normalised) of float32 16 kHz waves, batched by similar length.
    With ``window=(seconds, hop)`` a long clip gets the mean of its unit window embeddings instead, and with
    ``edges`` every clip first gets ``audio.canonical_edges``, exactly as ``Recognizer`` embeds for a checkpoint
    with that window and edges (``api.window_of``, ``api.edges_of``)."""
    if hasattr(model, "members"):   # a fusion (fusion.FusedRecognizer): each member embeds in its own way
        return model.embed_waves(waves, batch_size=batch_size, device=device, max_batch_samples=max_batch_samples,
                                 progress=progress)
    if edges:
        waves = [canonical_edges(w, **edges) for w in waves]
    if window:
        segs, owner = [], []
        for i, w in enumerate(waves):
            parts = windows(np.asarray(w, dtype=np.float32), *window)
            segs += parts
            owner += [i] * len(parts)
        e = embed_waves(model, segs, batch_size, device, max_batch_samples, progress)
        owner = np.asarray(owner)
        count = np.bincount(owner, minlength=len(waves))
        multi = count[owner] > 1
        e[multi] = l2_normalize(e[multi])
        out = np.zeros((len(waves), e.shape[1]), np.float32)
        np.add.at(out, owner, e)
        return out / count[:, None]
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    order = np.argsort([len(w) for w in waves])
    out: List[Optional[np.ndarray]] = [None] * len(waves)
    i = 0
    it_count = 0
    t0 = time.time()
    while i < len(order):
        j = i + 1
        while (j < len(order) and j - i < batch_size and len(waves[order[j]]) * (j - i + 1) <= max_batch_samples
               and len(waves[order[j]]) <= 1.25 * len(waves[order[i]]) + 1600):
            j += 1
        ids = order[i:j]
        lens = [max(len(waves[k]), 1) for k in ids]
        x = torch.zeros(len(ids), max(lens))
        for r, k in enumerate(ids):
            w = np.asarray(waves[k], dtype=np.float32)
            if len(w):
                x[r, :len(w)] = torch.from_numpy(w)
        lengths = torch.tensor(lens, dtype=torch.int64)
        x, lengths = x.to(device), lengths.to(device)
        e = model(x, lengths)  # the model masks padded frames with the true lengths
        e = e.float().cpu().numpy()
        for r, k in enumerate(ids):
            out[k] = e[r]
        i = j
        it_count += 1
        if progress and it_count % 20 == 0:
            print(f"  embedded {i}/{len(order)} ({time.time() - t0:.0f}s)", file=sys.stderr, flush=True)
    if was_training:
        model.train()
    return np.stack(out) if out else np.zeros((0, model.emb_dim), np.float32)


def embed_parts(model, waves: Sequence[np.ndarray], seconds: float, emb: Optional[np.ndarray] = None,
                cut_by: str = "time", **kw) -> Tuple[np.ndarray, np.ndarray]:
    """Embeddings of every clip's parts (``audio.word_parts``, cut by ``cut_by``) for a checkpoint that scores in
    parts: ``(P, D)`` and the clip each row belongs to, ``(P,)``. ``emb``: the clips' own embeddings, reused for
    one-part clips (the same audio through the same path). ``kw`` goes to ``embed_waves``."""
    cut = [word_parts(np.asarray(w, dtype=np.float32), seconds, cut_by) for w in waves]
    flat = [x for c in cut if emb is None or len(c) > 1 for x in c]
    new = embed_waves(model, flat, **kw) if flat else None
    rows, owner, k = [], [], 0
    for i, c in enumerate(cut):
        if emb is not None and len(c) == 1:
            rows.append(emb[i:i + 1])
            owner.append(i)
        else:
            rows.append(new[k:k + len(c)])
            owner += [i] * len(c)
            k += len(c)
    return np.concatenate(rows).astype(np.float32), np.asarray(owner)


def pad_edges(waves: Sequence[np.ndarray], seconds: float, db: Optional[float] = -50.0, seed: int = 0
              ) -> List[np.ndarray]:
    """Each wave between ``seconds`` of white noise at ``db`` dBFS (None or -inf: digital silence) before and
    after: the silence around the words of a microphone recording, as a robustness condition.

    >>> [len(w) for w in pad_edges([np.ones(100, np.float32)], 0.01)]
    [420]
    """
    rng = np.random.RandomState(seed)
    amp = 0.0 if db is None or not np.isfinite(db) else 10 ** (db / 20)
    n = int(seconds * SR)
    return [np.concatenate([rng.randn(n) * amp, w, rng.randn(n) * amp]).astype(np.float32) for w in waves]


def swap_edges(waves: Sequence[np.ndarray], items: Sequence[dict], seed: int = 0) -> List[np.ndarray]:
    """Each clip's words between the silence of a clip of another speaker of the same set, as a robustness
    condition: every dev speaker was recorded in one session, and the silence alone tells sessions apart
    (tools/silence_cue.py), so this takes that cue away from the same-speaker pairs. Words and silence are split by
    ``audio.edge_silence`` (word detector); clips where it finds no words neither give nor get silence.

    >>> r = np.random.RandomState(0)
    >>> word = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 16000)
    >>> quiet = lambda seconds, db: r.standard_normal(int(seconds * 16000)) * 10 ** (db / 20)
    >>> a = np.concatenate([quiet(1.0, -60), word, quiet(0.5, -60)]).astype(np.float32)
    >>> b = np.concatenate([quiet(0.25, -45), word, quiet(2.0, -45)]).astype(np.float32)
    >>> a2, b2 = swap_edges([a, b], [{"set": "s", "speaker": "x"}, {"set": "s", "speaker": "y"}])
    >>> [round(x, 1) for x in edge_silence(a2)], [round(x, 1) for x in edge_silence(b2)]
    ([0.2, 2.0], [1.0, 0.5])
    """
    rng = np.random.RandomState(seed)
    cuts = []
    for w in waves:
        lead, tail = edge_silence(w, "words")
        a, b = int(round(lead * SR)), len(w) - int(round(tail * SR))
        cuts.append((a, b) if b > a else None)
    by_set: Dict[str, List[int]] = defaultdict(list)
    for i, it in enumerate(items):
        if cuts[i]:
            by_set[it["set"]].append(i)
    out = list(waves)
    for idx in by_set.values():
        for i in idx:
            donors = [j for j in idx if items[j]["speaker"] != items[i]["speaker"]]
            if not donors:
                continue
            j = donors[rng.randint(len(donors))]
            (a, b), (da, db), d = cuts[i], cuts[j], waves[j]
            out[i] = np.concatenate([d[:da], waves[i][a:b], d[db:]]).astype(np.float32)
    return out


def pad_level(text: str) -> float:
    """``--pad-db`` values: a number of dBFS, or "zeros" (digital silence)."""
    return float("-inf") if text.strip().lower() in ("zeros", "-inf", "inf") else float(text)


def load_item_waves(items: Sequence[dict], loader: Optional[Callable[[str], np.ndarray]] = None,
                    crop: Optional[float] = None) -> List[np.ndarray]:
    from .data import load_wave
    loader = loader or load_wave
    cache: Dict[str, np.ndarray] = {}
    waves = []
    for it in items:
        p = it["path"]
        if p not in cache:
            cache[p] = loader(p)
        w = cache[p]
        if "segment" in it:
            a, b = it["segment"]
            w = w[int(a * SR):int(b * SR)]
        if crop:
            w = w[:int(crop * SR)]
        waves.append(w)
    return waves


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
def score_trials(emb: np.ndarray, trials: Sequence[Tuple[int, int, int]], norm: Optional[ScoreNorm] = None,
                 stats=None, emb_b: Optional[np.ndarray] = None, stats_b=None, parts=None, parts_b=None
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """(target, non-target) scores: cosine, or AS-norm with ``norm`` (``stats`` = norm.stats(emb), reused).
    With ``emb_b`` the second clip of each trial comes from it (another condition of the same clips). With
    ``parts = (part embeddings (P, D), owner (P,))`` (``embed_parts``) a pair scores the mean over its part pairs,
    as ``Recognizer.score`` does for a checkpoint that scores in parts (``parts_b``: the second clips' parts, in
    ``emb_b``'s condition)."""
    if parts is not None and trials:
        def side(p):
            pe, owner = p
            pmu, psd = norm.stats(pe) if norm is not None else (None, None)
            return l2_normalize(pe), pmu, psd, {int(i): np.flatnonzero(owner == i) for i in np.unique(owner)}
        (pu, pmu, psd, rows), (qu, qmu, qsd, rows_b) = side(parts), side(parts_b if parts_b is not None else parts)
        t = np.asarray(trials, dtype=np.int64)
        s = np.empty(len(t))
        for n, (i, j, _) in enumerate(t):
            a, b = rows[int(i)], rows_b[int(j)]
            raw = pu[a] @ qu[b].T                                                   # (ka, kb)
            if norm is not None:
                raw = norm.normalize(raw, (pmu[a][:, None], psd[a][:, None]), (qmu[b][None], qsd[b][None]))
            s[n] = raw.mean()
        return s[t[:, 2] == 1], s[t[:, 2] == 0]
    e = l2_normalize(emb)
    eb = e if emb_b is None else l2_normalize(emb_b)
    if not trials:
        return np.zeros(0), np.zeros(0)
    t = np.asarray(trials, dtype=np.int64)
    s = np.einsum("ij,ij->i", e[t[:, 0]], eb[t[:, 1]])
    if norm is not None:
        mu, sd = stats if stats is not None else norm.stats(emb)
        mub, sdb = (mu, sd) if emb_b is None else (stats_b if stats_b is not None else norm.stats(emb_b))
        s = norm.normalize(s, (mu[t[:, 0]], sd[t[:, 0]]), (mub[t[:, 1]], sdb[t[:, 1]]))
    return s[t[:, 2] == 1], s[t[:, 2] == 0]


def evaluate_embeddings(emb: np.ndarray, trials_by_set: Dict[str, Sequence[Tuple[int, int, int]]],
                        p_target: float = 0.01, norm: Optional[ScoreNorm] = None, emb_b: Optional[np.ndarray] = None,
                        parts=None, parts_b=None) -> Tuple[dict, Dict[str, Tuple[np.ndarray, np.ndarray]]]:
    """Per-set and pooled metrics. Returns (results, scores) where scores[set] = (target, nontarget).
    ``emb_b``, ``parts``, ``parts_b``: see ``score_trials``."""
    if parts is not None and emb_b is not None and parts_b is None:
        raise ValueError("scoring in parts with a second condition (emb_b) needs its parts (parts_b)")
    res: dict = {"sets": {}, "scale": "as-norm" if norm is not None else "cosine"}
    scores = {}
    all_t, all_n = [], []
    stats = norm.stats(emb) if norm is not None and len(emb) else None
    stats_b = norm.stats(emb_b) if norm is not None and emb_b is not None and len(emb_b) else None
    for s, tr in trials_by_set.items():
        t, n = score_trials(emb, tr, norm, stats, emb_b, stats_b, parts, parts_b)
        scores[s] = (t, n)
        all_t.append(t)
        all_n.append(n)
        res["sets"][s] = summarize_scores(t, n, p_target)
    pt = np.concatenate(all_t) if all_t else np.zeros(0)
    pn = np.concatenate(all_n) if all_n else np.zeros(0)
    res["pooled"] = summarize_scores(pt, pn, p_target)
    scores = {"pooled": (pt, pn), **scores}
    valid = [v["eer"] for v in res["sets"].values() if v["eer"] is not None]
    res["mean_set_eer"] = float(np.mean(valid)) if valid else None
    return res, scores


def trial_speakers(items: Sequence[dict], trials: Sequence[Tuple[int, int, int]]) -> Tuple[np.ndarray, np.ndarray]:
    """Speaker keys of the trials in ``score_trials`` order: ``(Nt,)`` for targets, ``(Nn, 2)`` for non-targets.
    A clip without a speaker label (a trials file) counts as its own speaker."""
    key = np.asarray([f"{it['set']}/{it['speaker']}" if it.get("speaker") is not None else f"#{i}"
                      for i, it in enumerate(items)], dtype=object)
    t = np.asarray(trials, dtype=np.int64).reshape(-1, 3)
    tgt, non = t[t[:, 2] == 1], t[t[:, 2] == 0]
    return key[tgt[:, 0]], np.stack([key[non[:, 0]], key[non[:, 1]]], axis=1)


def speakers_by_set(items: Sequence[dict], trials_by_set) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """``trial_speakers`` of every set, plus ``"pooled"``: all sets' trials in ``evaluate_embeddings`` order."""
    spk = {s: trial_speakers(items, tr) for s, tr in trials_by_set.items()}
    spk["pooled"] = (np.concatenate([spk[s][0] for s in trials_by_set]),
                     np.concatenate([spk[s][1] for s in trials_by_set]))
    return spk


# Bins of the shorter clip's speech (seconds) for ``at_threshold_by_speech``: commands (~1 s), short phrases, the
# 3-6 s a person records in the app, and read sentences.
SPEECH_BINS = (0.0, 1.5, 3.0, 6.0, float("inf"))


def trial_min_speech(speech: np.ndarray, trials_by_set) -> Tuple[np.ndarray, np.ndarray]:
    """Each trial's shorter clip's speech seconds, in ``evaluate_embeddings``' pooled order: (targets, non-targets)."""
    mt, mn = [], []
    for tr in trials_by_set.values():
        t = np.asarray(tr, dtype=np.int64).reshape(-1, 3)
        m = np.minimum(speech[t[:, 0]], speech[t[:, 1]])
        mt.append(m[t[:, 2] == 1])
        mn.append(m[t[:, 2] == 0])
    return np.concatenate(mt), np.concatenate(mn)


VOICEPRINT_CLIPS = 3   # clips per voiceprint in the identification trials: the app's advice for an enrollment


def voiceprint_trials(items: Sequence[dict], emb: np.ndarray, norm: Optional[ScoreNorm],
                      n_enroll: int = VOICEPRINT_CLIPS) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Identification trials: per set, every speaker with more than ``n_enroll`` whole files gets a voiceprint, the
    normalised mean of the unit embeddings of its first ``n_enroll`` files by path (as ``Gallery`` makes one); its
    other files are queries against every voiceprint of the set, scored as ``Recognizer.compare_many`` does.
    Returns (scores, same speaker?, query item index, voiceprint speaker), one entry per comparison.

    >>> items = [{"set": "s", "speaker": k, "path": f"{k}{i}"} for k in "ab" for i in range(4)]
    >>> emb = np.eye(2)[[0, 0, 0, 0, 1, 1, 1, 1]]
    >>> sc, same, q, p = voiceprint_trials(items, emb, None)
    >>> sc.tolist(), same.tolist(), q.tolist(), p.tolist()
    ([1.0, 0.0, 0.0, 1.0], [True, False, False, True], [3, 3, 7, 7], ['s/a', 's/b', 's/a', 's/b'])
    """
    e = l2_normalize(np.asarray(emb, dtype=np.float64))
    files: Dict[str, List[int]] = defaultdict(list)
    for i, it in enumerate(items):
        if "segment" not in it:   # halves of one file are not separate recordings
            files[f"{it['set']}/{it['speaker']}"].append(i)
    out = []
    for s in sorted({it["set"] for it in items}):
        spk = {k: sorted(v, key=lambda i: items[i]["path"]) for k, v in files.items()
               if k.startswith(f"{s}/") and len(v) > n_enroll}
        names = sorted(spk)
        if len(names) < 2:
            continue
        prints = l2_normalize(np.stack([e[spk[n][:n_enroll]].mean(0) for n in names]))
        for a, n in enumerate(names):
            for q in spk[n][n_enroll:]:
                scores = norm.against(e[q], prints) if norm is not None else prints @ e[q]
                out += [(float(x), a == b, q, names[b]) for b, x in enumerate(scores)]
    if not out:
        return np.zeros(0), np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0, object)
    sc, same, q, p = zip(*out)
    return np.asarray(sc), np.asarray(same), np.asarray(q, dtype=np.int64), np.asarray(p, dtype=object)


def at_threshold_by_speech(target, nontarget, min_t, min_n, threshold: float, bins=SPEECH_BINS) -> List[dict]:
    """False accepts and rejects at one threshold, per bin of the shorter clip's speech seconds.

    One threshold serves every pair in the app, but it is calibrated on pooled trials, most of them short:
    this shows how it fares on long recordings.

    >>> rows = at_threshold_by_speech([2.0, 0.5], [0.1, 3.0], [1.0, 4.0], [1.0, 4.0], 1.0)
    >>> [(r["seconds"], r["false_reject_pct"], r["false_accept_pct"]) for r in rows]
    [('0-1.5', 0.0, 0.0), ('3-6', 100.0, 100.0)]
    """
    t, n = np.asarray(target, np.float64), np.asarray(nontarget, np.float64)
    min_t, min_n = np.asarray(min_t, np.float64), np.asarray(min_n, np.float64)
    out = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        bt, bn = (min_t >= lo) & (min_t < hi), (min_n >= lo) & (min_n < hi)
        if not (bt.any() or bn.any()):
            continue
        out.append({"seconds": f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}",
                    "n_target": int(bt.sum()), "n_nontarget": int(bn.sum()),
                    "false_reject_pct": float(100 * np.mean(t[bt] < threshold)) if bt.any() else None,
                    "false_accept_pct": float(100 * np.mean(n[bn] >= threshold)) if bn.any() else None})
    return out


def add_bootstrap(res: dict, scores: dict, items: Sequence[dict], trials_by_set, n_boot: int = 1000,
                  seed: int = 0) -> None:
    """Add a 95 % speaker-level bootstrap interval ``eer_ci95`` to every set (and pooled) that has an EER."""
    for s, (ts, ns) in speakers_by_set(items, trials_by_set).items():
        v = res["pooled"] if s == "pooled" else res["sets"][s]
        if v.get("eer") is None:
            continue
        reps = bootstrap_eer(*scores[s], ts, ns, n_boot=n_boot, seed=seed)
        v["eer_ci95"] = [float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))]


# a sample of long pairs or voiceprint comparisons smaller than this describes too few speakers to show
MIN_TARGETS, MIN_NONTARGETS = 20, 100


def calibration_from_scores(target: np.ndarray, nontarget: np.ndarray, eer_threshold: float, eer: float,
                            max_scores: int = 2000, seed: int = 0, scale: str = "cosine",
                            min_speech: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                            target_speakers: Optional[np.ndarray] = None,
                            voiceprints: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None) -> dict:
    """``meta["calibration"]``: the threshold and a sample of the dev scores for the app's plot and tail rates.
    With ``min_speech`` (each trial's shorter clip's seconds of words, ``trial_min_speech``), also the scores of
    the long pairs (``scoring.LONG_PAIR_SECONDS``) on their own, which the app shows for a long pair, and with
    ``target_speakers`` (one per target trial) how many people their same-speaker pairs come from. With
    ``voiceprints`` (scores, same speaker?, query speaker; from ``voiceprint_trials``), the clip-against-voiceprint scores
    that explain an Identify result."""
    rng = np.random.RandomState(seed)

    def sub(x):
        x = np.asarray(x, dtype=np.float64)
        if len(x) > max_scores:
            x = x[np.sort(rng.choice(len(x), max_scores, replace=False))]
        return [round(float(v), 4) for v in x]

    out = {"threshold": float(eer_threshold), "eer": float(eer), "scale": scale,
           "target_scores": sub(target), "nontarget_scores": sub(nontarget)}
    if min_speech is not None:
        long_t, long_n = (np.asarray(m) >= LONG_PAIR_SECONDS for m in min_speech)
        lt, ln = np.asarray(target)[long_t], np.asarray(nontarget)[long_n]
        if lt.size >= MIN_TARGETS and ln.size >= MIN_NONTARGETS:
            out["long_pairs"] = {"min_speech_s": LONG_PAIR_SECONDS, "n_target": int(lt.size),
                                 "n_nontarget": int(ln.size), "target_scores": sub(lt), "nontarget_scores": sub(ln)}
            if target_speakers is not None:
                out["long_pairs"]["target_speakers"] = int(np.unique(np.asarray(target_speakers)[long_t]).size)
    if voiceprints is not None:
        vs, same, who = (np.asarray(x) for x in voiceprints)
        if same.sum() >= MIN_TARGETS and (~same).sum() >= MIN_NONTARGETS:
            out["voiceprints"] = {"clips_per_print": VOICEPRINT_CLIPS, "n_target": int(same.sum()),
                                  "n_nontarget": int((~same).sum()), "speakers": int(np.unique(who).size),
                                  "target_scores": sub(vs[same]), "nontarget_scores": sub(vs[~same])}
    return out


def evaluate(model, items: Sequence[dict], trials_by_set, waves: Optional[List[np.ndarray]] = None,
             batch_size: int = 16, device=None, crop: Optional[float] = None, progress: bool = False,
             norm: Optional[ScoreNorm] = None, window: Optional[Tuple[float, float]] = None,
             edges: Optional[dict] = None, parts: Optional[float] = None, cut_by: str = "time"):
    """``parts``: seconds per part when the checkpoint scores in parts (``scoring.parts_of``), else None;
    ``cut_by``: how the clips are cut (``scoring.part_cut_of``)."""
    if waves is None:
        waves = load_item_waves(items, crop=crop)
    kw = dict(batch_size=batch_size, device=device, progress=progress, window=window, edges=edges)
    emb = embed_waves(model, waves, **kw)
    pe = embed_parts(model, waves, parts, emb=emb, cut_by=cut_by, **kw) if parts else None
    res, scores = evaluate_embeddings(emb, trials_by_set, norm=norm, parts=pe)
    res["n_utterances"] = len(items)
    return res, scores, emb


def format_results(res: dict) -> str:
    rows = list(res["sets"].items()) + [("POOLED", res["pooled"])]
    ci = any("eer_ci95" in v for _, v in rows)
    lines = [f"{'set':34s} {'EER%':>7s}" + (f" {'95% CI':>13s}" if ci else "")
             + f" {'minDCF':>7s} {'thr':>7s} {'#tgt':>6s} {'#non':>7s}"]
    for s, v in rows:
        eer = f"{v['eer']:.2f}" if v["eer"] is not None else "n/a"
        eer = f"{eer:>7s}"
        if ci:
            lo_hi = v.get("eer_ci95")
            eer += f" {f'{lo_hi[0]:.1f}-{lo_hi[1]:.1f}' if lo_hi else 'n/a':>13s}"
        dcf = v.get("min_dcf_p0.01")
        dcf = f"{dcf:.3f}" if dcf is not None else "n/a"
        thr = f"{v['eer_threshold']:.3f}" if v.get("eer_threshold") is not None else "n/a"
        lines.append(f"{s:34s} {eer} {dcf:>7s} {thr:>7s} {v['n_target']:6d} {v['n_nontarget']:7d}")
    if res.get("mean_set_eer") is not None:
        lines.append(f"mean EER over sets with both trial kinds: {res['mean_set_eer']:.2f}%")
    at = res["pooled"].get("at_calibrated_threshold")
    if at:
        lines.append(f"at the checkpoint's threshold {at['threshold']:.3f} (pooled): false accepts "
                     f"{at['false_accept_pct']:.2f}%, false rejects {at['false_reject_pct']:.2f}%")
        pct = lambda x: f"{x:.2f}%" if x is not None else "n/a"
        for r in at.get("by_speech_seconds", []):
            lines.append(f"  shorter clip {r['seconds']:>7s} s of speech: false accepts {pct(r['false_accept_pct']):>7s} "
                         f"of {r['n_nontarget']}, false rejects {pct(r['false_reject_pct']):>7s} of {r['n_target']}")
    return "\n".join(lines)


def load_for_evaluation(path, device=None):
    """A SpeakerModel in eval mode, or for a fusion file its `FusedRecognizer` (``embed_waves`` embeds either).
    Not ``api.load_model`` for a single network: `evaluate --cosine` must still open a checkpoint whose cohort is
    broken, which a `Recognizer` refuses."""
    from .checkpoint import FUSION_FORMAT, load_checkpoint, model_from_payload, read_payload
    if str(path).endswith(".pt"):
        payload = read_payload(path)
        if payload.get("format") == FUSION_FORMAT:
            from .api import load_model
            return load_model(path, device=device)
        model = model_from_payload(payload, os.path.basename(str(path)))
        return (model.to(device) if device is not None else model).eval()
    return load_checkpoint(path, device=device).eval()


def main_evaluate(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help=".pt (ours) or .nemo checkpoint")
    ap.add_argument("input", help="trials file, <set>/<speaker>/<clip> folder, or .jsonl manifest")
    ap.add_argument("--out", default=None, help="output prefix (default runs/eval/<checkpoint>_<input>)")
    ap.add_argument("--max-nontarget", type=int, default=20000)
    ap.add_argument("--split-single", type=float, default=4.0,
                    help="split files of single-file speakers into halves if each half has >= SEC s (0: off)")
    ap.add_argument("--crop", type=float, default=None, help="embed only the first SEC seconds")
    ap.add_argument("--pad-edges", type=float, default=None, metavar="SEC",
                    help="put SEC seconds of quiet noise before and after each clip (a microphone recording's "
                         "silence around the words); after --crop")
    ap.add_argument("--pad-db", type=pad_level, default=-50.0,
                    help="level of that noise in dBFS, or 'zeros' for digital silence")
    ap.add_argument("--pad-side", choices=("both", "second"), default="both",
                    help="pad both clips of each trial, or only the second (a file enrolled, a recording tested)")
    ap.add_argument("--swap-edges", action="store_true",
                    help="put each clip's words between the silence of another speaker's clip of the same set "
                         "(takes away the recording session that the silence gives away); before --crop")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--cosine", action="store_true", help="score raw cosines even if the checkpoint has AS-norm")
    ap.add_argument("--whole", action="store_true",
                    help="one embedding per whole clip even if the checkpoint has an embedding window or scores "
                         "long clips in parts")
    ap.add_argument("--bootstrap", type=int, default=0, metavar="N",
                    help="add 95%% confidence intervals from N speaker-level bootstrap replicates (e.g. 1000)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_for_evaluation(a.checkpoint, device=device)
    try:
        norm = None if a.cosine else score_norm_of(model.meta, model.emb_dim)
        window = None if a.whole else window_of(model.meta)
        edges = edges_of(model.meta)
        parts = None if a.whole else parts_of(model.meta)
        cut_by = part_cut_of(model.meta)
    except ValueError as e:
        from .checkpoint import CheckpointError
        raise CheckpointError(f"{os.path.basename(a.checkpoint)}: {e}") from None

    if os.path.isdir(a.input):
        items = items_from_folder(a.input)
        trials = None
    elif a.input.endswith((".jsonl", ".json")):
        items = items_from_manifest(a.input)
        trials = None
    else:
        items, tr = read_trials(a.input)
        trials = {"trials": tr}
    if not items:
        print(f"no audio found in {a.input}", file=sys.stderr)
        return 2
    t0 = time.time()
    if trials is None:
        items, waves, trials = items_with_trials(items, a.split_single, a.max_nontarget, a.seed)
    else:
        waves = load_item_waves(items)
    if a.swap_edges:
        waves = swap_edges(waves, items, a.seed)
    if a.crop:
        waves = [w[:int(a.crop * SR)] for w in waves]
    pad_label = None
    if a.pad_edges:
        padded = pad_edges(waves, a.pad_edges, a.pad_db, a.seed)
        pad_label = f"{a.pad_db:g}dB" if np.isfinite(a.pad_db) else "zeros"
        pad_label += "_second" if a.pad_side == "second" else ""
    if a.pad_edges and a.pad_side == "second":
        kw = dict(batch_size=a.batch_size, device=device, progress=True, window=window, edges=edges)
        emb, emb_b = (embed_waves(model, w, **kw) for w in (waves, padded))
        pa, pb = ((embed_parts(model, w, parts, emb=e, cut_by=cut_by, **kw) for w, e in ((waves, emb), (padded, emb_b)))
                  if parts else (None, None))
        res, scores = evaluate_embeddings(emb, trials, norm=norm, emb_b=emb_b, parts=pa, parts_b=pb)
        res["n_utterances"] = len(items)
    else:
        res, scores, _ = evaluate(model, items, trials, waves=padded if a.pad_edges else waves,
                                  batch_size=a.batch_size, device=device, progress=True, norm=norm, window=window,
                                  edges=edges, parts=parts, cut_by=cut_by)
    cal_thr = (model.meta.get("calibration") or {}).get("threshold")
    pt, pn = scores["pooled"]
    if cal_thr is not None and res["scale"] == scale_of(model.meta) and len(pt) and len(pn):
        # one threshold serves every recording in the app: how it fares in this condition
        res["pooled"]["at_calibrated_threshold"] = {
            "threshold": float(cal_thr), "false_accept_pct": float(100 * np.mean(pn >= cal_thr)),
            "false_reject_pct": float(100 * np.mean(pt < cal_thr)),
            # speech of the clips as given (padding adds none: audio.word_frames ignores quiet noise)
            "by_speech_seconds": at_threshold_by_speech(
                pt, pn, *trial_min_speech(np.array([speech_seconds(w) for w in waves]), trials), cal_thr)}
    if a.bootstrap > 0:
        add_bootstrap(res, scores, items, trials, n_boot=a.bootstrap, seed=a.seed)
    res.update({"checkpoint": os.path.abspath(a.checkpoint), "input": os.path.abspath(a.input),
                "crop": a.crop, "swap_edges": a.swap_edges, "window": window, "edges": edges, "parts": parts,
                "part_cut": cut_by if parts else None,
                "pad_edges": [a.pad_edges, a.pad_db if np.isfinite(a.pad_db) else "zeros"] if pad_label else None,
                "pad_side": a.pad_side if pad_label else None,
                "split_single": a.split_single, "max_nontarget": a.max_nontarget,
                "seed": a.seed, "seconds": round(time.time() - t0, 1),
                "model_calibration_threshold": cal_thr})
    out = a.out
    if out is None:
        os.makedirs(os.path.join("runs", "eval"), exist_ok=True)
        stem = os.path.splitext(os.path.basename(a.checkpoint))[0]
        istem = os.path.splitext(os.path.basename(os.path.normpath(a.input)))[0]
        out = os.path.join("runs", "eval", f"{stem}_{istem}" + ("_swapped" if a.swap_edges else "")
                           + (f"_crop{a.crop:g}" if a.crop else "")
                           + (f"_pad{a.pad_edges:g}at{pad_label}" if pad_label else ""))
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump(res, f, indent=1)
    plot_scores(out + ".png", scores, title=f"{os.path.basename(a.checkpoint)} on {os.path.basename(a.input)}",
                threshold=res["model_calibration_threshold"] if res["scale"] == scale_of(model.meta) else None,
                scale=res["scale"])
    print(format_results(res))
    print(f"wrote {out}.json and {out}.png ({res['seconds']}s)")
    return 0


# --------------------------------------------------------------------------------------------
# AS-norm cohort and calibration
# --------------------------------------------------------------------------------------------
def build_cohort(model, rows: Sequence[dict], per_speaker: int = 4, max_seconds: float = 6.0, seed: int = 0,
                 batch_size: int = 16, device=None, window: Optional[Tuple[float, float]] = None,
                 edges: Optional[dict] = None, speeds: Sequence[float] = (1.0,)) -> Tuple[np.ndarray, List[str]]:
    """One unit voiceprint per speaker (normalised mean of up to ``per_speaker`` clips, first ``max_seconds``).

    Each speed other than 1 adds a virtual speaker per training speaker, ``"<label>@<speed>"``: the same clips
    played that much faster (``augment.resample_speed``), the first ``max_seconds`` after the change."""
    from .augment import resample_speed
    by_spk: Dict[str, List[str]] = defaultdict(list)
    for r in rows:
        by_spk[r["label"]].append(r["audio_filepath"])
    rng = np.random.RandomState(seed)
    speakers = sorted(by_spk)
    items, owner = [], []
    for i, spk in enumerate(speakers):
        files = sorted(by_spk[spk])
        pick = [files[j] for j in sorted(rng.permutation(len(files))[:per_speaker])]
        items += [{"path": f} for f in pick]
        owner += [i] * len(pick)
    owner = np.asarray(owner)
    cohort, names = [], []
    for speed in speeds:
        if speed == 1.0:
            waves = load_item_waves(items, crop=max_seconds)
        else:
            waves = [resample_speed(torch.from_numpy(w), speed).numpy()[:int(max_seconds * SR)]
                     for w in load_item_waves(items, crop=max_seconds * speed + 0.1)]
        emb = l2_normalize(embed_waves(model, waves, batch_size=batch_size, device=device, progress=True,
                                       window=window, edges=edges))
        cohort += [l2_normalize(emb[owner == i].mean(0)) for i in range(len(speakers))]
        names += [spk if speed == 1.0 else f"{spk}@{speed:g}" for spk in speakers]
    return np.stack(cohort).astype(np.float32), names


def dev_calibration(items, trials, emb: np.ndarray, emb_crop: Optional[np.ndarray], norm: ScoreNorm,
                    crop_seconds: float, n_boot: int, old: Optional[dict] = None,
                    speech: Optional[np.ndarray] = None, parts=None) -> dict:
    """``meta["calibration"]`` and ``meta["dev_eer"]`` of a checkpoint from its dev embeddings: the AS-norm threshold
    at the pooled EER point, score samples for the app's plot (with ``speech``, each dev clip's seconds of words,
    the long pairs' too), and per-corpus EERs (AS-norm and cosine, whole clips and the first ``crop_seconds``)
    with speaker-bootstrap intervals. Prints both tables. ``parts`` (``embed_parts``): the pairs are scored in
    parts, as the checkpoint will score them; the first-``crop_seconds`` tables and the voiceprint trials (Identify
    compares whole clips) are not."""
    res = {}
    for name, nm in (("as-norm", norm), ("cosine", None)):
        r, sc = evaluate_embeddings(emb, trials, norm=nm, parts=parts)
        res[name] = (r, sc)
        if emb_crop is not None:
            res[name + "_crop"] = evaluate_embeddings(emb_crop, trials, norm=nm)
        print(f"[{name}] " + format_results(r))
    r, sc = res["as-norm"]
    pt, pn = sc["pooled"]
    min_speech = trial_min_speech(np.asarray(speech), trials) if speech is not None else None
    vs, same, query, _ = voiceprint_trials(items, emb, norm)
    who = np.asarray([f"{items[i]['set']}/{items[i]['speaker']}" for i in query], dtype=object)
    calibration = calibration_from_scores(pt, pn, r["pooled"]["eer_threshold"], r["pooled"]["eer"] / 100.0,
                                          scale="as-norm", min_speech=min_speech,
                                          target_speakers=speakers_by_set(items, trials)["pooled"][0],
                                          voiceprints=(vs, same, who))

    def summary(key):
        rr = res[key][0]
        out = {"pooled": rr["pooled"]["eer"], "per_corpus": {k: v["eer"] for k, v in rr["sets"].items()},
               "mean_over_corpora": rr["mean_set_eer"], "min_dcf_p0.01": rr["pooled"].get("min_dcf_p0.01")}
        if key + "_crop" in res:
            rc = res[key + "_crop"][0]
            out.update({"pooled_crop": rc["pooled"]["eer"], "mean_crop": rc["mean_set_eer"],
                        "per_corpus_crop": {k: v["eer"] for k, v in rc["sets"].items()}, "crop_seconds": crop_seconds})
        return out

    add_bootstrap(r, sc, items, trials, n_boot=n_boot)
    ci = {k: v["eer_ci95"] for k, v in r["sets"].items() if "eer_ci95" in v}
    if "eer_ci95" in r["pooled"]:
        ci["pooled"] = r["pooled"]["eer_ci95"]
    old = old or {}
    dev_eer = {**summary("as-norm"), "scale": "as-norm", "cosine": summary("cosine"),
               "ci95": {**ci, "method": f"speaker-level bootstrap, {n_boot} replicates"},
               "trials": old.get("trials", "within each corpus; single-file speakers split into halves"),
               "epoch": old.get("epoch")}
    if min_speech is not None:
        dev_eer["at_threshold_by_speech"] = at_threshold_by_speech(pt, pn, *min_speech, calibration["threshold"])
    return {"calibration": calibration, "dev_eer": dev_eer}


def main_calibrate(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core calibrate",
                                 description="Add an AS-norm cohort from the training speakers to a checkpoint and "
                                             "re-calibrate its threshold and dev EERs on that scale.")
    ap.add_argument("checkpoint", help="our .pt checkpoint (rewritten in place unless --out)")
    ap.add_argument("--train", required=True, help="training manifest: the cohort speakers (never dev speakers)")
    ap.add_argument("--dev", required=True, help="dev manifest: calibration trials")
    ap.add_argument("--out", default=None)
    ap.add_argument("--top-k", type=int, default=200)
    ap.add_argument("--per-speaker", type=int, default=4)
    ap.add_argument("--cohort-speeds", default="1.0",
                    help="comma-separated speeds: each one other than 1.0 adds every training speaker played that "
                         "much faster as a cohort speaker (e.g. 1.0,0.9,1.1)")
    ap.add_argument("--crop-eval", type=float, default=2.0)
    ap.add_argument("--window", type=float, default=None,
                    help="embed clips longer than 1.5 windows as the mean of SEC-second windows (hop SEC/2); "
                         "default: the longest training crop of the checkpoint's recipe; 0: whole clips")
    ap.add_argument("--edges", choices=("checkpoint", "canonical", "none"), default="checkpoint",
                    help="silence around the words: 'canonical' gives every clip the same (audio.canonical_edges, "
                         "edges found by audio.word_frames) before embedding, here and wherever the checkpoint is "
                         "used; 'none' embeds clips as they are; default: what the checkpoint already does")
    ap.add_argument("--parts", type=float, default=None, metavar="SEC",
                    help="score clips with at least 2 x SEC seconds of words in parts of about SEC seconds "
                         "(audio.word_parts), here and wherever the checkpoint is used; 0: whole clips; default: "
                         "what the checkpoint already does")
    ap.add_argument("--cut", choices=("time", "words"), default=None,
                    help="how --parts cuts a clip (audio.word_parts): 'time', equal-time parts (rule 45); 'words', "
                         "an equal share of the word frames each (rule 48); default: what the checkpoint does")
    ap.add_argument("--bootstrap", type=int, default=1000, help="replicates for the stored 95%% intervals")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.parts is not None and a.parts != 0 and not 0.5 <= a.parts <= 30:
        print(f"error: --parts wants 0.5-30 seconds (or 0), got {a.parts:g}", file=sys.stderr)
        return 2
    from .checkpoint import load_checkpoint, save_checkpoint
    from .data import read_manifest
    model = load_checkpoint(a.checkpoint).eval()
    train_rows, dev_rows = read_manifest(a.train), read_manifest(a.dev)
    overlap = {r["label"] for r in train_rows} & {r["label"] for r in dev_rows}
    if overlap:
        print(f"error: {len(overlap)} speakers are in both manifests; the cohort must exclude dev speakers",
              file=sys.stderr)
        return 2
    try:
        speeds = [float(x) for x in a.cohort_speeds.split(",")]
    except ValueError:
        speeds = []
    if not speeds or len(set(speeds)) != len(speeds) or not all(0.5 <= x <= 2.0 for x in speeds):
        print(f"error: --cohort-speeds wants distinct speeds in 0.5-2.0, got {a.cohort_speeds!r}", file=sys.stderr)
        return 2
    win = a.window
    if win is None:
        crops = (model.meta.get("recipe") or {}).get("crop_sec") or [0.0]
        win = float(max(crops))
    window = (win, win / 2.0) if win and win > 0 else None
    edges = {"checkpoint": edges_of(model.meta), "canonical": dict(CANONICAL_EDGES), "none": None}[a.edges]
    try:
        parts = parts_of(model.meta) if a.parts is None else (a.parts or None)
        cut_by = part_cut_of(model.meta) if a.cut is None else a.cut
    except ValueError as e:
        print(f"error: {a.checkpoint}: {e}", file=sys.stderr)
        return 2
    t0 = time.time()
    with torch.no_grad():
        cohort, speakers = build_cohort(model, train_rows, per_speaker=a.per_speaker, window=window, edges=edges,
                                        speeds=speeds)
        norm = ScoreNorm(cohort, top_k=a.top_k)
        items, waves, trials = items_with_trials(items_from_manifest(a.dev))
        emb = embed_waves(model, waves, window=window, edges=edges)
        emb2 = (embed_waves(model, [w[:int(a.crop_eval * SR)] for w in waves], window=window, edges=edges)
                if a.crop_eval else None)
        pe = embed_parts(model, waves, parts, emb=emb, cut_by=cut_by, window=window, edges=edges) if parts else None
    meta = dict(model.meta)
    meta.pop("embedding", None)
    meta.pop("edges", None)
    meta.pop("scoring", None)
    if parts:   # "cut" only when not rule 45's default, so that such files stay byte-for-byte what they were
        meta["scoring"] = {"parts": float(parts), **({"cut": cut_by} if cut_by != "time" else {})}
    if window:
        meta["embedding"] = {"window": window[0], "hop": window[1]}
    if edges:
        meta["edges"] = dict(edges)
    meta["score_norm"] = {**norm.to_meta(), "cohort_speakers": len(speakers),
                          "cohort_source": f"{os.path.basename(a.train)}: {a.per_speaker} clips per speaker, first 6 s"
                          + ("" if speeds == [1.0] else
                             f"; speeds {', '.join(f'{x:g}' for x in speeds)} (other than 1: virtual speakers)")}
    meta.update(dev_calibration(items, trials, emb, emb2, norm, a.crop_eval, a.bootstrap, meta.get("dev_eer"),
                                speech=np.array([speech_seconds(w) for w in waves]), parts=pe))
    out = a.out or a.checkpoint
    save_checkpoint(out, model, meta=meta, half=True, drop_head=True)
    print(f"wrote {out}: " + (f"{window[0]:g} s windows, hop {window[1]:g} s; " if window else "whole clips; ") +
          ("canonical edges; " if edges else "") + (f"scored in {parts:g} s parts ({cut_by}); " if parts else "") +
          f"AS-norm top {norm.top_k} of {len(speakers)} training speakers; threshold "
          f"{meta['calibration']['threshold']:.3f}; dev EER mean {meta['dev_eer']['mean_over_corpora']:.2f}% "
          f"(cosine {meta['dev_eer']['cosine']['mean_over_corpora']:.2f}%), pooled {meta['dev_eer']['pooled']:.2f}% "
          f"(cosine {meta['dev_eer']['cosine']['pooled']:.2f}%) in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main_evaluate())
