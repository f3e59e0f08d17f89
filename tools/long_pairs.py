"""Can a threshold that knows how long the clips are beat the one calibrated threshold? (model card, "Long
recordings": rules 14 and 15, both failed, so nothing ships from here).

    python tools/long_pairs.py checkpoints/ecapa-small.pt data/dev.jsonl

Scores every dev trial as ``calibrate`` does, then tries, each fitted and judged speaker-disjointly:
- rule 14, a log-linear shift: s' = s - w (ln min(d_a, d_b) - ln 2), d = seconds of word frames in [0.5, 10],
  w from a class-balanced logistic regression of the label on (s, ln d);
- rule 15, a second threshold for long pairs (both clips >= 3 s of words, ``audio.speech_seconds``), each at
  its own EER point.
Protocols: A, 5 speaker-disjoint folds per corpus (out-of-fold decisions, paired speaker bootstrap); B, leave one
corpus out; C, all dev (mean per-corpus EER). Prints what the rules' bars need.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core.api import edges_of, window_of  # noqa: E402
from speaker_core.audio import speech_seconds, word_frames  # noqa: E402
from speaker_core.evaluate import embed_waves, items_from_manifest, items_with_trials, load_for_evaluation  # noqa: E402
from speaker_core.scoring import LONG_PAIR_SECONDS, compute_eer, l2_normalize, score_norm_of  # noqa: E402


def folds_of(keys: np.ndarray, sets: list[str], k: int = 5, seed: int = 0) -> dict:
    """Speakers shuffled within each corpus and dealt round-robin to ``k`` folds."""
    rng, out = np.random.default_rng(seed), {}
    for s in sets:
        spk = sorted({x for x in keys if x.startswith(s + "/")})
        for r, i in enumerate(rng.permutation(len(spk))):
            out[spk[i]] = r % k
    return out


def dev_embeddings(description: str):
    """Parse ``CHECKPOINT DEV [--bootstrap N]`` and embed the dev trials' clips as ``calibrate`` does.
    Returns (args, model, its AS-norm, items, waves, trials by set, embeddings)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("checkpoint")
    ap.add_argument("dev")
    ap.add_argument("--bootstrap", type=int, default=1000)
    a = ap.parse_args()
    model = load_for_evaluation(a.checkpoint, device="cpu")
    items, waves, trials = items_with_trials(items_from_manifest(a.dev))
    emb = embed_waves(model, waves, window=window_of(model.meta), edges=edges_of(model.meta))
    return a, model, score_norm_of(model.meta, model.emb_dim), items, waves, trials, emb


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    a, model, norm, items, waves, trials, emb = dev_embeddings(__doc__.splitlines()[0])
    sets = sorted(trials)
    I, J, Y, S = np.array([(i, j, y, si) for si, s in enumerate(sets) for i, j, y in trials[s]]).T
    e = l2_normalize(emb)
    mu, sd = norm.stats(emb)
    score = norm.normalize(np.einsum("ij,ij->i", e[I], e[J]), (mu[I], sd[I]), (mu[J], sd[J]))
    frames = np.clip([word_frames(w).sum() * 0.01 for w in waves], 0.5, 10.0)
    qc = np.log(np.minimum(frames[I], frames[J])) - np.log(2.0)
    span = np.array([speech_seconds(w) for w in waves])
    long = np.minimum(span[I], span[J]) >= LONG_PAIR_SECONDS
    key = np.array([f"{it['set']}/{it['speaker']}" for it in items], dtype=object)
    tgt, non = Y == 1, Y == 0
    print(f"{a.checkpoint}: {len(Y)} trials; long pairs: {int((long & tgt).sum())} same-speaker, "
          f"{int((long & non).sum())} different-speaker")

    def thr(s, m):
        return compute_eer(s[m & tgt], s[m & non])[1]

    def fit_w(m):
        lr = LogisticRegression(class_weight="balanced", C=1e4, max_iter=1000)
        lr.fit(np.stack([score[m], qc[m]], 1), Y[m])
        return -lr.coef_[0, 1] / lr.coef_[0, 0]

    def decide(rule, tr):   # -> accept (N,) for every trial, fitted on the trials in tr
        if rule == "one":
            return score >= thr(score, tr)
        if rule == "shift":
            s = score - fit_w(tr) * qc
            return s >= thr(s, tr)
        return np.where(long, score >= thr(score, tr & long), score >= thr(score, tr & ~long))

    def hter(acc, m, w=None):
        w = np.ones(len(Y)) if w is None else w
        t, n = m & tgt, m & non
        return 50.0 * (np.sum(w[t] * ~acc[t]) / w[t].sum() + np.sum(w[n] * acc[n]) / w[n].sum())

    fold = folds_of(key, sets)
    fi, fj = np.array([fold[k] for k in key[I]]), np.array([fold[k] for k in key[J]])
    rules = ("one", "shift", "step")
    oof = {r: np.zeros(len(Y), bool) for r in rules}
    used = np.zeros(len(Y), bool)
    for k in range(5):
        tr, te = (fi != k) & (fj != k), (fi == k) & (fj == k)
        for r in rules:
            oof[r][te] = decide(r, tr)[te]
        used |= te
    print("A. out-of-fold HTER % (miss / false accepts):")
    for name, m in (("pooled", used), ("long pairs", used & long), ("short pairs", used & ~long)):
        cells = [f"{r} {hter(oof[r], m):.2f} ({100 * np.mean(~oof[r][m & tgt]):.1f} / "
                 f"{100 * np.mean(oof[r][m & non]):.1f})" for r in rules]
        print(f"   {name:11s} " + " | ".join(cells))
    ids, inv = np.unique(key, return_inverse=True)
    rng = np.random.default_rng(0)
    wins = {("shift", "pooled"): [], ("step", "long pairs"): []}
    while len(wins[("shift", "pooled")]) < a.bootstrap:
        c = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size)).astype(float)
        w = np.where(tgt, c[inv[I]], c[inv[I]] * c[inv[J]])
        if min(w[used & long & tgt].sum(), w[used & long & non].sum()) == 0:
            continue
        wins[("shift", "pooled")].append(hter(oof["shift"], used, w) < hter(oof["one"], used, w))
        wins[("step", "long pairs")].append(hter(oof["step"], used & long, w) < hter(oof["one"], used & long, w))
    for (r, m), v in wins.items():
        print(f"   {r} better than one threshold ({m}) in {100 * np.mean(v):.1f} % of {a.bootstrap} replicates")
    both = [si for si in range(len(sets)) if (tgt & (S == si)).any() and (non & (S == si)).any()]
    loco = {r: [hter(decide(r, S != si), S == si) for si in both] for r in rules}
    print("B. leave one corpus out, mean HTER %: " + ", ".join(f"{r} {np.mean(v):.2f}" for r, v in loco.items()))
    shifted = {"shift": score - fit_w(np.ones(len(Y), bool)) * qc,
               "step": score - (thr(score, long) - thr(score, ~long)) * long}
    mean_eer = lambda s: 100 * np.mean([compute_eer(s[(S == si) & tgt], s[(S == si) & non])[0] for si in both])
    print(f"C. mean per-corpus EER %: one {mean_eer(score):.2f}, " +
          ", ".join(f"{r} {mean_eer(s):.2f}" for r, s in shifted.items()))


if __name__ == "__main__":
    main()
