"""Would Identify decide better at a threshold calibrated on voiceprints than at the pair threshold? (model card,
"Identification threshold": rule 16, failed, so Identify keeps the pair threshold).

    python tools/identify_threshold.py checkpoints/ecapa-small.pt data/dev.jsonl

Voiceprint trials on dev: each speaker with at least 4 whole files in a corpus gets a voiceprint, the normalised mean
of the unit embeddings of its first 3 files (as ``Gallery``); its other files are queries, scored against every
voiceprint of the corpus with the app's AS-norm (``Recognizer.compare_many``). Five speaker-disjoint folds per corpus:
the threshold at the EER point of the trials outside fold k decides the trials inside it, against the checkpoint's
pair threshold; then an open-set test per fold: a query against its fold's voiceprints (correct: its own is first and
above the threshold), and again without its own (falsely identified: any above the threshold).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core.evaluate import voiceprint_trials  # noqa: E402
from speaker_core.scoring import compute_eer  # noqa: E402
from long_pairs import dev_embeddings, folds_of  # noqa: E402


def main() -> None:
    a, model, norm, items, waves, trials, emb = dev_embeddings(__doc__.splitlines()[0])
    pair_thr = float(model.meta["calibration"]["threshold"])
    keys = np.array([f"{it['set']}/{it['speaker']}" for it in items], dtype=object)
    fold = folds_of(keys, sorted(trials))
    sc, same, query, ps = voiceprint_trials(items, emb, norm)
    qs = keys[query]
    fq, fp = np.array([fold[k] for k in qs]), np.array([fold[k] for k in ps])
    acc_pair, acc_fit, used, fitted = sc >= pair_thr, np.zeros(len(sc), bool), np.zeros(len(sc), bool), []
    for k in range(5):
        tr, te = (fq != k) & (fp != k), (fq == k) & (fp == k)
        fitted.append(compute_eer(sc[tr & same], sc[tr & ~same])[1])
        acc_fit[te], used[te] = sc[te] >= fitted[-1], True

    def hter(acc, w):
        t, n = used & same, used & ~same
        return 50.0 * (np.sum(w[t] * ~acc[t]) / w[t].sum() + np.sum(w[n] * acc[n]) / w[n].sum())

    ones = np.ones(len(sc))
    print(f"{a.checkpoint}: {len(sc)} voiceprint trials ({int(same.sum())} same speaker), {int(used.sum())} out of fold; "
          f"fold thresholds {', '.join(f'{t:.3f}' for t in fitted)}; pair threshold {pair_thr:.3f}")
    for label, acc in (("pair threshold", acc_pair), ("fitted", acc_fit)):
        print(f"   {label:14s} HTER {hter(acc, ones):.2f} % (misses {100 * np.mean(~acc[used & same]):.1f} %, "
              f"false accepts {100 * np.mean(acc[used & ~same]):.1f} %)")
    ids, inv = np.unique(np.concatenate([qs, ps]), return_inverse=True)
    iq, ip = inv[: len(sc)], inv[len(sc):]
    rng, wins = np.random.default_rng(0), []
    while len(wins) < a.bootstrap:
        c = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size)).astype(float)
        w = np.where(same, c[iq], c[iq] * c[ip])
        if w[used & same].sum() and w[used & ~same].sum():
            wins.append(hter(acc_fit, w) < hter(acc_pair, w))
    print(f"   fitted better in {100 * np.mean(wins):.1f} % of {a.bootstrap} speaker replicates")
    correct, false_id, n_q = np.zeros(2), np.zeros(2), 0
    for q in np.unique(query):   # each query against the voiceprints of its own fold, with and without its own
        k = fold[keys[q]]
        m = (query == q) & (fp == k)
        if m.sum() < 2:
            continue
        scores, own = sc[m], same[m]
        n_q += 1
        for i, t in enumerate((pair_thr, fitted[k])):
            correct[i] += own[np.argmax(scores)] and scores[own].max() >= t
            false_id[i] += scores[~own].max() >= t
    print(f"   open set, {n_q} queries against their fold's voiceprints: correct {100 * correct[0] / n_q:.1f} % "
          f"(pair) / {100 * correct[1] / n_q:.1f} % (fitted); unknown speaker taken for an enrolled one "
          f"{100 * false_id[0] / n_q:.1f} % / {100 * false_id[1] / n_q:.1f} %")


if __name__ == "__main__":
    main()
