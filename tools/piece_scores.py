"""Rule 45 (tools/rules/rule45.txt): does scoring long clips in 2 s pieces of their words fix the one threshold on
long pairs?

    python tools/piece_scores.py checkpoints/ecapa-speakernet-fusion.pt data/dev.jsonl [--swap-edges]

Embeds the dev trials' clips as ``evaluate`` does (F), and also every piece of the clips whose words last at least
4 s (P: the pair's score is the mean AS-norm score over its piece pairs). Prints both systems' per-corpus, mean and
pooled EERs, each one's errors on long pairs (both clips >= 3 s of words) at its own pooled EER threshold, and the
paired speaker-bootstrap comparison of the long-pair half total error that the rule's first bar needs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core.api import edges_of, window_of  # noqa: E402
from speaker_core.audio import SAMPLE_RATE, edge_silence, speech_seconds  # noqa: E402
from speaker_core.evaluate import (embed_waves, evaluate_embeddings, items_from_manifest,  # noqa: E402
                                   items_with_trials, load_for_evaluation, speakers_by_set, swap_edges)
from speaker_core.scoring import LONG_PAIR_SECONDS, compute_eer, l2_normalize, score_norm_of  # noqa: E402

PIECE_SECONDS = 2.0          # the rule's piece length; a clip is cut when its words last at least twice that


def pieces(wave: np.ndarray, piece: float = PIECE_SECONDS) -> list[np.ndarray]:
    """The clip's word span cut into floor(span / piece) equal pieces when that is 2 or more, else the clip."""
    lead, tail = edge_silence(wave)
    span = wave.size / SAMPLE_RATE - lead - tail
    k = int(span // piece)
    if k < 2:
        return [wave]
    start, end = int(round(lead * SAMPLE_RATE)), wave.size - int(round(tail * SAMPLE_RATE))
    cuts = np.linspace(start, end, k + 1).round().astype(int)
    return [wave[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def piece_scores(emb, piece_emb, owner, trials_by_set, norm):
    """Scores as ``evaluate_embeddings`` orders them, each pair scored as the mean over its piece pairs."""
    mu, sd = norm.stats(piece_emb)
    e = l2_normalize(piece_emb)
    rows = {i: np.flatnonzero(owner == i) for i in np.unique(owner)}
    out = {}
    for s, tr in trials_by_set.items():
        t = np.asarray(tr, dtype=np.int64).reshape(-1, 3)
        sc = np.empty(len(t))
        for n, (i, j, _) in enumerate(t):
            a, b = rows[i], rows[j]
            raw = e[a] @ e[b].T                                    # (ka, kb)
            sc[n] = norm.normalize(raw, (mu[a][:, None], sd[a][:, None]), (mu[b][None], sd[b][None])).mean()
        out[s] = (sc[t[:, 2] == 1], sc[t[:, 2] == 0])
    out["pooled"] = tuple(np.concatenate([out[s][k] for s in trials_by_set]) for k in (0, 1))
    return out


def eers(scores, sets):
    per = {s: 100 * compute_eer(*scores[s])[0] for s in sets}
    eer, thr = compute_eer(*scores["pooled"])
    return per, float(np.mean(list(per.values()))), 100 * eer, thr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("dev")
    ap.add_argument("--swap-edges", action="store_true")
    ap.add_argument("--bootstrap", type=int, default=1000)
    a = ap.parse_args()
    model = load_for_evaluation(a.checkpoint, device="cpu")
    norm = score_norm_of(model.meta, model.emb_dim)
    kw = dict(window=window_of(model.meta), edges=edges_of(model.meta))
    items, waves, trials = items_with_trials(items_from_manifest(a.dev))
    if a.swap_edges:
        waves = swap_edges(waves, items, 0)
    emb = embed_waves(model, waves, progress=True, **kw)
    cut = [pieces(w) for w in waves]
    multi = [i for i, p in enumerate(cut) if len(p) > 1]
    extra = embed_waves(model, [x for i in multi for x in cut[i]], progress=True, **kw) if multi else emb[:0]
    # piece embeddings: a one-piece clip's is its own embedding (the same audio through the same path)
    piece_emb, owner, k = [], [], 0
    for i in range(len(waves)):
        if len(cut[i]) > 1:
            n = len(cut[i])
            piece_emb.append(extra[k:k + n]); owner += [i] * n; k += n
        else:
            piece_emb.append(emb[i:i + 1]); owner.append(i)
    piece_emb, owner = np.concatenate(piece_emb), np.asarray(owner)
    print(f"{len(waves)} clips, {len(multi)} cut into {len(piece_emb) - len(waves) + len(multi)} pieces")

    _, f_scores = evaluate_embeddings(emb, trials, norm=norm)
    p_scores = piece_scores(emb, piece_emb, owner, trials, norm)
    sets = [s for s in trials if len(f_scores[s][0]) and len(f_scores[s][1])]
    speech = np.array([speech_seconds(w) for w in waves])
    spk = speakers_by_set(items, trials)
    # each pooled trial's shorter clip's words, in the pooled order
    mins = [np.concatenate([np.minimum(speech[np.asarray(trials[s])[:, 0]], speech[np.asarray(trials[s])[:, 1]])[
        np.asarray(trials[s])[:, 2] == y] for s in trials]) for y in (1, 0)]
    long_t, long_n = mins[0] >= LONG_PAIR_SECONDS, mins[1] >= LONG_PAIR_SECONDS
    print(f"long pairs (both clips >= {LONG_PAIR_SECONDS:g} s of words): {long_t.sum()} same-speaker, "
          f"{long_n.sum()} different-speaker")

    res = {}
    for name, sc in (("F", f_scores), ("P", p_scores)):
        per, mean, pooled, thr = eers(sc, sets)
        t, n = sc["pooled"]
        fa, fr = 100 * np.mean(n[long_n] >= thr), 100 * np.mean(t[long_t] < thr)
        res[name] = dict(thr=thr, sc=sc)
        print(f"{name}: mean {mean:.2f}  pooled {pooled:.2f}  threshold {thr:.3f}  "
              + "  ".join(f"{s.split('-')[0]} {v:.2f}" for s, v in per.items()))
        print(f"   long pairs at its threshold: FA {fa:.1f} %  FR {fr:.1f} %  half total {(fa + fr) / 2:.2f}")
        for lo, hi in ((0, 1.5), (1.5, 3), (3, 6), (6, np.inf)):
            bt, bn = (mins[0] >= lo) & (mins[0] < hi), (mins[1] >= lo) & (mins[1] < hi)
            print(f"   shorter clip {lo:g}-{hi:g} s: FA {100 * np.mean(n[bn] >= thr):5.2f} % of {bn.sum():5d}, "
                  f"FR {100 * np.mean(t[bt] < thr):5.2f} % of {bt.sum():4d}")

    # paired speaker bootstrap of the long-pair half total error, thresholds fixed (bootstrap_eer's draw)
    ts, ns = spk["pooled"]
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
        for name in ("F", "P"):
            t, n = res[name]["sc"]["pooled"]
            thr = res[name]["thr"]
            h.append(50 * (np.average(n[long_n] >= thr, weights=wn) + np.average(t[long_t] < thr, weights=wt)))
        diffs.append(h[1] - h[0])
    d = np.asarray(diffs)
    print(f"long-pair half total, P - F over {len(d)} paired replicates: median {np.median(d):+.2f}, "
          f"95 % interval {np.percentile(d, 2.5):+.2f} to {np.percentile(d, 97.5):+.2f}, "
          f"P lower in {100 * np.mean(d < 0):.1f} %")


if __name__ == "__main__":
    main()
