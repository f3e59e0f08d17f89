"""Rule 17 (failed, nothing ships from here): project the between-corpus directions of the training speakers'
cohort voiceprints out of every embedding before AS-norm, judged as tools/rules/rule17.txt says.

    python tools/nap_rule.py checkpoints/ecapa-small.pt data/dev.jsonl

Needs data/train.jsonl beside the dev manifest (the cohort rows are the sorted training speakers).
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



def main() -> None:
    a, model, norm, items, waves, trials, emb = dev_embeddings(__doc__.splitlines()[0])
    train_labels = sorted({json.loads(l)['label'] for l in open(Path(a.dev).with_name('train.jsonl'))})
    C = norm.cohort
    assert len(train_labels) == C.shape[0], (len(train_labels), C.shape)
    corp = np.array([l.split('/')[0] for l in train_labels])
    names = sorted(set(corp))
    M = np.stack([C[corp == c].mean(0) for c in names]); M = M - M.mean(0)
    U, s, _ = np.linalg.svd(M.T, full_matrices=False)
    P = U[:, s > 1e-6 * s[0]]
    print('corpora', len(names), 'directions', P.shape[1], 'singular', s.round(3))
    proj = lambda x: l2_normalize(x - (x @ P) @ P.T)
    nap = ScoreNorm(proj(C), top_k=norm.top_k)

    sets = sorted(trials)
    I, J, Y, S = np.array([(i, j, y, si) for si, s_ in enumerate(sets) for i, j, y in trials[s_]]).T
    def scores(nm, E):
        e = l2_normalize(E); mu, sd = nm.stats(e)
        return nm.normalize(np.einsum('ij,ij->i', e[I], e[J]), (mu[I], sd[I]), (mu[J], sd[J]))
    base = scores(norm, emb); cand = scores(nap, proj(l2_normalize(emb)))
    span = np.array([speech_seconds(w) for w in waves]); long = np.minimum(span[I], span[J]) >= LONG_PAIR_SECONDS
    tgt, non = Y == 1, Y == 0
    key = np.array([f"{it['set']}/{it['speaker']}" for it in items], dtype=object)
    fold = folds_of(key, sets); fi = np.array([fold[k] for k in key[I]]); fj = np.array([fold[k] for k in key[J]])
    oof = {n: np.zeros(len(Y), bool) for n in ('base', 'nap')}; used = np.zeros(len(Y), bool)
    for k in range(5):
        tr, te = (fi != k) & (fj != k), (fi == k) & (fj == k)
        for n, sc in (('base', base), ('nap', cand)):
            th = compute_eer(sc[tr & tgt], sc[tr & non])[1]
            oof[n][te] = (sc >= th)[te]
        used |= te
    def hter(acc, m, w=None):
        w = np.ones(len(Y)) if w is None else w
        t, n = m & tgt, m & non
        return 50.0 * (np.sum(w[t] * ~acc[t]) / w[t].sum() + np.sum(w[n] * acc[n]) / w[n].sum())
    print('A. OOF HTER % (miss / FA)')
    for nm_, m in (('pooled', used), ('long', used & long), ('short', used & ~long)):
        print('  ', nm_, ' | '.join(f"{n} {hter(oof[n], m):.2f} ({100*np.mean(~oof[n][m & tgt]):.1f} / {100*np.mean(oof[n][m & non]):.1f})" for n in oof))
    ids, inv = np.unique(key, return_inverse=True); rng = np.random.default_rng(0); win = []; winl = []
    while len(win) < a.bootstrap:
        c = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size)).astype(float)
        w = np.where(tgt, c[inv[I]], c[inv[I]] * c[inv[J]])
        if min(w[used & long & tgt].sum(), w[used & long & non].sum()) == 0: continue
        win.append(hter(oof['nap'], used, w) < hter(oof['base'], used, w))
        winl.append(hter(oof['nap'], used & long, w) < hter(oof['base'], used & long, w))
    print(f'   nap better pooled in {100*np.mean(win):.1f} % of replicates; long in {100*np.mean(winl):.1f} %')
    both = [si for si in range(len(sets)) if (tgt & (S == si)).any() and (non & (S == si)).any()]
    for n, sc in (('base', base), ('nap', cand)):
        per = [100 * compute_eer(sc[(S == si) & tgt], sc[(S == si) & non])[0] for si in both]
        print(f'C. {n}: mean per-corpus EER {np.mean(per):.2f}, pooled {100*compute_eer(sc[tgt], sc[non])[0]:.2f}; ' +
              ', '.join(f'{sets[si]} {p:.2f}' for si, p in zip(both, per)))


if __name__ == "__main__":
    main()
