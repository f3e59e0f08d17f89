"""Is a candidate checkpoint better than the shipped one, beyond the noise of a small dev set?

Scores both checkpoints on the same within-corpus dev trials (each with its own AS-norm cohort and windows)
and draws the same speaker-level bootstrap replicates for both, so the EER differences are paired. Prints,
per corpus, for the mean over corpora and for the pooled trials: both EERs, the difference and its 95 %
interval, and how often the candidate was better.

    python tools/compare_checkpoints.py checkpoints/ecapa-small.pt runs/x/cal.pt [--crop 2] [--bootstrap 1000]
    ... --pad-edges 1.5 --pad-side second     # a file enrolled, a recording with silence around the words tested
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core.api import edges_of, window_of  # noqa: E402
from speaker_core.evaluate import (SR, embed_parts, embed_waves, evaluate_embeddings, items_from_manifest,  # noqa: E402
                                   items_with_trials, load_for_evaluation, pad_edges, pad_level, speakers_by_set,
                                   swap_edges)
from speaker_core.scoring import bootstrap_eer, part_cut_of, parts_of, score_norm_of  # noqa: E402


def replicates(path, waves, trials, speakers, n_boot, seed, waves_b=None):
    """``waves_b``: the second clip of each trial comes from these (one side padded), the first from ``waves``.
    A checkpoint that scores long clips in parts (``scoring.parts_of``) is scored that way."""
    model = load_for_evaluation(path)
    norm = score_norm_of(model.meta, model.emb_dim)
    kw = dict(window=window_of(model.meta), edges=edges_of(model.meta))
    emb, emb_b = (embed_waves(model, w, **kw) if w is not None else None for w in (waves, waves_b))
    parts = parts_of(model.meta)
    pe, pe_b = ((embed_parts(model, w, parts, emb=e, cut_by=part_cut_of(model.meta), **kw) if w is not None else None
                 for w, e in ((waves, emb), (waves_b, emb_b))) if parts else (None, None))
    res, scores = evaluate_embeddings(emb, trials, norm=norm, emb_b=emb_b, parts=pe, parts_b=pe_b)
    sets = [s for s in trials if res["sets"][s]["eer"] is not None]   # both trial kinds; all count in pooled
    reps = {s: bootstrap_eer(*scores[s], *speakers[s], n_boot=n_boot, seed=seed) for s in sets}
    reps["mean"] = np.mean([reps[s] for s in sets], axis=0)
    reps["pooled"] = bootstrap_eer(*scores["pooled"], *speakers["pooled"], n_boot=n_boot, seed=seed)
    point = {s: res["sets"][s]["eer"] for s in sets}
    point["mean"], point["pooled"] = res["mean_set_eer"], res["pooled"]["eer"]
    return point, reps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("candidate")
    ap.add_argument("--manifest", default="data/dev.jsonl")
    ap.add_argument("--crop", type=float, default=None, help="embed only the first SEC seconds of each clip")
    ap.add_argument("--pad-edges", type=float, default=None, metavar="SEC",
                    help="SEC seconds of quiet noise before and after each clip (as evaluate --pad-edges)")
    ap.add_argument("--pad-db", type=pad_level, default=-50.0, help="its level in dBFS, or 'zeros'")
    ap.add_argument("--pad-side", choices=("both", "second"), default="both",
                    help="pad both clips of each trial, or only the second (a file enrolled, a recording tested)")
    ap.add_argument("--swap-edges", action="store_true",
                    help="each clip's words between another speaker's silence (as evaluate --swap-edges)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    items, waves, trials = items_with_trials(items_from_manifest(a.manifest))
    if a.swap_edges:
        waves = swap_edges(waves, items, a.seed)
    if a.crop:
        waves = [w[: int(a.crop * SR)] for w in waves]
    waves_b = None
    if a.pad_edges:
        padded = pad_edges(waves, a.pad_edges, a.pad_db, a.seed)
        waves, waves_b = (waves, padded) if a.pad_side == "second" else (padded, None)
    speakers = speakers_by_set(items, trials)
    pb, rb = replicates(a.base, waves, trials, speakers, a.bootstrap, a.seed, waves_b)
    pc, rc = replicates(a.candidate, waves, trials, speakers, a.bootstrap, a.seed, waves_b)
    cond = " (each clip's words between another speaker's silence)" if a.swap_edges else ""
    cond += f" (first {a.crop:g} s)" if a.crop else ""
    if a.pad_edges:
        side = "the second clip of each trial" if a.pad_side == "second" else "both clips"
        cond += f" ({side} between {a.pad_edges:g} s of {a.pad_db:g} dBFS noise)"
    print(f"EER % on {a.manifest}{cond}; {a.bootstrap} paired speaker-level bootstrap replicates")
    print(f"{'set':30s} {'base':>6s} {'cand':>6s} {'diff':>6s} {'95% CI of diff':>16s} {'P(cand better)':>15s}")
    for s in list(rb):
        d = rc[s] - rb[s]
        lo, hi = np.percentile(d, [2.5, 97.5])
        print(f"{s:30s} {pb[s]:6.2f} {pc[s]:6.2f} {pc[s] - pb[s]:+6.2f} {f'{lo:+.2f} .. {hi:+.2f}':>16s} "
              f"{np.mean(d < 0):15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
