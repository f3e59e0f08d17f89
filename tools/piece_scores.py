"""Rule 45 (tools/rules/rule45.txt): does scoring long clips in 2 s parts of their words fix the one threshold on
long pairs? (Rule 46 ran it on each shipped file alone; rule 48 compares two ways to cut the parts.)

    python tools/piece_scores.py checkpoints/ecapa-speakernet-fusion.pt data/dev.jsonl [--swap-edges]
    python tools/piece_scores.py checkpoints/ecapa-speakernet-fusion.pt data/dev.jsonl --versions time words

Scores every dev trial as ``evaluate`` does with whole clips (F) and in parts (P: ``audio.word_parts`` with 2 s,
the mean AS-norm score over the part pairs, ``evaluate.embed_parts``), whatever the checkpoint's own setting;
``--versions time words`` makes F equal-time parts and P equal-word parts (rule 48). Prints
both versions' per-corpus, mean and pooled EERs, each one's errors by length at its own pooled EER threshold, and the
paired speaker-bootstrap comparison of the long pairs' half total error that the rules' first bar needs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core.api import edges_of, window_of  # noqa: E402
from speaker_core.audio import speech_seconds  # noqa: E402
from speaker_core.evaluate import (embed_parts, embed_waves, evaluate_embeddings, items_from_manifest,  # noqa: E402
                                   items_with_trials, load_for_evaluation, speakers_by_set, swap_edges,
                                   trial_min_speech)
from speaker_core.scoring import LONG_PAIR_SECONDS, compute_eer, score_norm_of  # noqa: E402

PART_SECONDS = 2.0          # the rules' part length; a clip is cut when its words last at least twice that


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("dev")
    ap.add_argument("--swap-edges", action="store_true")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--versions", nargs=2, choices=("whole", "time", "words"), default=("whole", "time"),
                    metavar=("F", "P"), help="whole clips, or parts cut by 'time' or 'words' (default: whole time)")
    a = ap.parse_args()
    model = load_for_evaluation(a.checkpoint, device="cpu")
    norm = score_norm_of(model.meta, model.emb_dim)
    kw = dict(window=window_of(model.meta), edges=edges_of(model.meta))
    items, waves, trials = items_with_trials(items_from_manifest(a.dev))
    if a.swap_edges:
        waves = swap_edges(waves, items, 0)
    emb = embed_waves(model, waves, progress=True, **kw)
    versions = {}
    for name, how in zip("FP", a.versions):
        parts = None
        if how != "whole":
            parts = embed_parts(model, waves, PART_SECONDS, emb=emb, cut_by=how, progress=True, **kw)
            cut = np.bincount(parts[1])
            print(f"{name} ({how}): {len(waves)} clips, {int((cut > 1).sum())} cut into {int(cut[cut > 1].sum())} parts")
        versions[name] = evaluate_embeddings(emb, trials, norm=norm, parts=parts)
    mins = trial_min_speech(np.array([speech_seconds(w) for w in waves]), trials)   # (targets, non-targets)
    long_t, long_n = mins[0] >= LONG_PAIR_SECONDS, mins[1] >= LONG_PAIR_SECONDS
    print(f"long pairs (both clips >= {LONG_PAIR_SECONDS:g} s of words): {long_t.sum()} same-speaker, "
          f"{long_n.sum()} different-speaker")
    thr = {}
    for name, (res, sc) in versions.items():
        t, n = sc["pooled"]
        thr[name] = th = compute_eer(t, n)[1]
        per = {s: v["eer"] for s, v in res["sets"].items() if v["eer"] is not None}
        fa, fr = 100 * np.mean(n[long_n] >= th), 100 * np.mean(t[long_t] < th)
        print(f"{name}: mean {res['mean_set_eer']:.2f}  pooled {res['pooled']['eer']:.2f}  threshold {th:.3f}  "
              + "  ".join(f"{s.split('-')[0]} {v:.2f}" for s, v in per.items()))
        print(f"   long pairs at its threshold: FA {fa:.1f} %  FR {fr:.1f} %  half total {(fa + fr) / 2:.2f}")
        for lo, hi in ((0, 1.5), (1.5, 3), (3, 6), (6, np.inf)):
            bt, bn = (mins[0] >= lo) & (mins[0] < hi), (mins[1] >= lo) & (mins[1] < hi)
            print(f"   shorter clip {lo:g}-{hi:g} s: FA {100 * np.mean(n[bn] >= th):5.2f} % of {bn.sum():5d}, "
                  f"FR {100 * np.mean(t[bt] < th):5.2f} % of {bt.sum():4d}")

    # paired speaker bootstrap of the long pairs' half total error, thresholds fixed (bootstrap_eer's draw)
    ts, ns = speakers_by_set(items, trials)["pooled"]
    ids, inv = np.unique(np.concatenate([ts, ns.ravel()]), return_inverse=True)
    ti, ni = inv[:ts.size], inv[ts.size:].reshape(-1, 2)
    rng = np.random.default_rng(0)
    diffs = []
    while len(diffs) < a.bootstrap:
        c = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size)).astype(np.float64)
        wt, wn = c[ti][long_t], (c[ni[:, 0]] * c[ni[:, 1]])[long_n]
        if wt.sum() == 0 or wn.sum() == 0:
            continue
        h = []
        for name, (_, sc) in versions.items():
            t, n = sc["pooled"]
            h.append(50 * (np.average(n[long_n] >= thr[name], weights=wn)
                           + np.average(t[long_t] < thr[name], weights=wt)))
        diffs.append(h[1] - h[0])
    d = np.asarray(diffs)
    print(f"long-pair half total, P - F over {len(d)} paired replicates: median {np.median(d):+.2f}, "
          f"95 % interval {np.percentile(d, 2.5):+.2f} to {np.percentile(d, 97.5):+.2f}, "
          f"P lower in {100 * np.mean(d < 0):.1f} %")


if __name__ == "__main__":
    main()
