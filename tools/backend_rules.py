"""Rules 17 and 18 (both failed, nothing ships from here): a fixed map of every embedding before AS-norm, fitted
on training speakers only, judged against the shipped scoring as tools/rules/rule17.txt and rule18.txt say.

    python tools/backend_rules.py checkpoints/ecapa-small.pt data/dev.jsonl --form nap
    python tools/backend_rules.py checkpoints/ecapa-small.pt data/dev.jsonl --form teacher \\
        --train-emb E.npy --teacher data/teacher.npy

- nap (rule 17): project out the between-corpus directions of the cohort voiceprints (needs data/train.jsonl
  beside the dev manifest: the cohort rows are its sorted speakers).
- teacher (rule 18): the least-squares affine map from our embeddings of the training files (E.npy, made by
  ``tools/prepare_teacher.py --checkpoint CKPT``) to resemblyzer's (``tools/prepare_teacher.py``).
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from long_pairs import dev_embeddings, folds_of  # noqa: E402
from speaker_core.audio import speech_seconds  # noqa: E402
from speaker_core.scoring import LONG_PAIR_SECONDS, ScoreNorm, compute_eer, l2_normalize  # noqa: E402


def nap_map(cohort: np.ndarray, train_manifest: Path):
    """Rule 17: x -> unit(x - P P^T x), P the between-corpus directions of the cohort voiceprints."""
    labels = sorted({json.loads(line)["label"] for line in open(train_manifest)})
    assert len(labels) == cohort.shape[0], (len(labels), cohort.shape)
    corpus = np.array([lab.split("/")[0] for lab in labels])
    means = np.stack([cohort[corpus == c].mean(0) for c in sorted(set(corpus))])
    u, s, _ = np.linalg.svd((means - means.mean(0)).T, full_matrices=False)
    p = u[:, s > 1e-6 * s[0]]
    print(f"nap: {len(set(corpus))} corpora, {p.shape[1]} directions")
    return lambda x: l2_normalize(x - (x @ p) @ p.T)


def teacher_map(train_emb: np.ndarray, teacher: np.ndarray):
    """Rule 18: x -> unit(W^T unit(x) + b), (W, b) least squares of the teacher's embeddings on ours."""
    e = np.hstack([l2_normalize(train_emb), np.ones((len(train_emb), 1))])
    wb, *_ = np.linalg.lstsq(e, l2_normalize(teacher), rcond=None)
    r2 = 1 - np.sum((e @ wb - l2_normalize(teacher)) ** 2) / np.sum((teacher - teacher.mean(0)) ** 2)
    print(f"teacher map: {train_emb.shape[1]} -> {teacher.shape[1]}, R^2 on the training files {r2:.3f}")
    return lambda x: l2_normalize(l2_normalize(x) @ wb[:-1] + wb[-1])


def main() -> None:
    extra = {"--form": None, "--train-emb": None, "--teacher": None}
    argv, rest = [sys.argv[0]], iter(sys.argv[1:])
    for x in rest:
        if x in extra:
            extra[x] = next(rest)
        else:
            argv.append(x)
    sys.argv = argv
    a, model, norm, items, waves, trials, emb = dev_embeddings(__doc__.splitlines()[0])
    if extra["--form"] == "nap":
        fmap = nap_map(norm.cohort, Path(a.dev).with_name("train.jsonl"))
    elif extra["--form"] == "teacher":
        fmap = teacher_map(np.load(extra["--train-emb"]), np.load(extra["--teacher"]))
    else:
        sys.exit("--form nap|teacher")
    cand_norm = ScoreNorm(fmap(norm.cohort), top_k=norm.top_k)

    sets = sorted(trials)
    I, J, Y, S = np.array([(i, j, y, si) for si, s in enumerate(sets) for i, j, y in trials[s]]).T

    def scores(nm, x):
        e = l2_normalize(x)
        mu, sd = nm.stats(e)
        return nm.normalize(np.einsum("ij,ij->i", e[I], e[J]), (mu[I], sd[I]), (mu[J], sd[J]))

    sc = {"shipped": scores(norm, emb), extra["--form"]: scores(cand_norm, fmap(l2_normalize(emb)))}
    span = np.array([speech_seconds(w) for w in waves])
    long = np.minimum(span[I], span[J]) >= LONG_PAIR_SECONDS
    tgt, non = Y == 1, Y == 0
    key = np.array([f"{it['set']}/{it['speaker']}" for it in items], dtype=object)
    fold = folds_of(key, sets)
    fi, fj = np.array([fold[k] for k in key[I]]), np.array([fold[k] for k in key[J]])
    oof = {n: np.zeros(len(Y), bool) for n in sc}
    used = np.zeros(len(Y), bool)
    for k in range(5):
        tr, te = (fi != k) & (fj != k), (fi == k) & (fj == k)
        for n, s in sc.items():
            oof[n][te] = (s >= compute_eer(s[tr & tgt], s[tr & non])[1])[te]
        used |= te

    def hter(acc, m, w=None):
        w = np.ones(len(Y)) if w is None else w
        t, n = m & tgt, m & non
        return 50.0 * (np.sum(w[t] * ~acc[t]) / w[t].sum() + np.sum(w[n] * acc[n]) / w[n].sum())

    print("A. out-of-fold HTER % (misses / false accepts)")
    for name, m in (("pooled", used), ("long pairs", used & long), ("short pairs", used & ~long)):
        print(f"   {name:11s} " + " | ".join(f"{n} {hter(oof[n], m):.2f} ({100 * np.mean(~oof[n][m & tgt]):.1f} / "
                                            f"{100 * np.mean(oof[n][m & non]):.1f})" for n in oof))
    base, cand = oof["shipped"], oof[extra["--form"]]
    ids, inv = np.unique(key, return_inverse=True)
    rng, win, win_long = np.random.default_rng(0), [], []
    while len(win) < a.bootstrap:
        c = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size)).astype(float)
        w = np.where(tgt, c[inv[I]], c[inv[I]] * c[inv[J]])
        if min(w[used & long & tgt].sum(), w[used & long & non].sum()) == 0:
            continue
        win.append(hter(cand, used, w) < hter(base, used, w))
        win_long.append(hter(cand, used & long, w) < hter(base, used & long, w))
    print(f"   better than shipped: pooled in {100 * np.mean(win):.1f} %, long pairs in {100 * np.mean(win_long):.1f} % "
          f"of {a.bootstrap} replicates")
    both = [si for si in range(len(sets)) if (tgt & (S == si)).any() and (non & (S == si)).any()]
    for n, s in sc.items():
        per = [100 * compute_eer(s[(S == si) & tgt], s[(S == si) & non])[0] for si in both]
        print(f"C. {n}: mean per-corpus EER {np.mean(per):.2f}, pooled {100 * compute_eer(s[tgt], s[non])[0]:.2f}; "
              + ", ".join(f"{sets[si]} {p:.2f}" for si, p in zip(both, per)))


if __name__ == "__main__":
    main()
