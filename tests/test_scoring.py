import numpy as np
import pytest
import torch

from speaker_core.scoring import (DEFAULT_THRESHOLD, bootstrap_eer, compute_eer, cosine, det_curve, min_dcf, plot_scores,
                                  summarize_scores, to_nemo_scale)


def test_scale():
    assert DEFAULT_THRESHOLD == 0.4
    assert abs(to_nemo_scale(0.4) - 0.7) < 1e-12
    assert abs(cosine(np.array([1.0, 0.0]), np.array([2.0, 0.0])) - 1.0) < 1e-9
    assert abs(cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0]))) < 1e-6
    c = cosine(np.random.randn(5, 8), np.random.randn(5, 8))
    assert c.shape == (5,) and np.all(np.abs(c) <= 1 + 1e-9)


def test_eer_perfect_and_identical():
    eer, thr = compute_eer([0.8, 0.9, 0.95], [0.1, 0.2, 0.3])
    assert eer == 0.0 and 0.3 < thr < 0.8
    rng = np.random.RandomState(0)
    x = rng.randn(4000)
    eer, _ = compute_eer(x[:2000], x[2000:])
    assert abs(eer - 0.5) < 0.04
    eer, _ = compute_eer(x, x)
    assert abs(eer - 0.5) < 0.01


def test_eer_hand_computed():
    # threshold 0.6: target 0.3 missed (1/3), non-target 0.7 accepted (1/3)
    eer, thr = compute_eer([0.3, 0.6, 0.9], [0.1, 0.4, 0.7])
    assert abs(eer - 1 / 3) < 1e-9 and abs(thr - 0.6) < 1e-9
    # gaussian case: d' = 2 -> EER = Phi(-1) = 0.1587
    rng = np.random.RandomState(1)
    eer, thr = compute_eer(rng.randn(20000) + 1, rng.randn(20000) - 1)
    assert abs(eer - 0.1587) < 0.01 and abs(thr) < 0.05


def test_min_dcf():
    dcf, _ = min_dcf([0.9, 0.8], [0.1, 0.2])
    assert dcf == 0.0
    rng = np.random.RandomState(0)
    x = rng.randn(2000)
    dcf, _ = min_dcf(x[:1000], x[1000:], p_target=0.01)
    assert 0.9 <= dcf <= 1.0  # no better than the trivial reject-all system (cost 1)
    dcf2, _ = min_dcf(rng.randn(2000) + 3, rng.randn(2000), p_target=0.01)
    assert dcf2 < dcf
    pf, pm, thr = det_curve([0.3, 0.6], [0.1, 0.5])
    assert np.all(np.diff(pf) <= 0) and np.all(np.diff(pm) >= 0)


def test_summary_and_plot(tmp_path):
    s = summarize_scores([0.8, 0.7], [0.1, 0.75])
    assert s["eer"] == 50.0 and s["n_target"] == 2
    path = plot_scores(str(tmp_path / "x.png"), {"pooled": ([0.8, 0.7, 0.6], [0.1, 0.2, 0.65])}, threshold=0.4)
    assert path == str(tmp_path / "x.png") and (tmp_path / "x.png").stat().st_size > 1000


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_as_norm_hand_computed_and_symmetric():
    from speaker_core.scoring import ScoreNorm
    rng = np.random.default_rng(1)
    cohort = _unit(rng.standard_normal((40, 6)))
    norm = ScoreNorm(cohort, top_k=5)
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    s = cosine(a, b)
    ta = np.sort(cohort @ _unit(a))[-5:]
    tb = np.sort(cohort @ _unit(b))[-5:]
    want = 0.5 * ((s - ta.mean()) / ta.std() + (s - tb.mean()) / tb.std())
    assert abs(norm.pair(a, b) - want) < 1e-9
    assert abs(norm.pair(a, b) - norm.pair(b, a)) < 1e-12
    assert abs(norm.pair(3.0 * a, b) - norm.pair(a, b)) < 1e-9       # scale-free, like the cosine
    prints = rng.standard_normal((4, 6))
    many = norm.against(a, prints)
    assert np.allclose(many, [norm.pair(a, p) for p in prints])


def test_as_norm_discounts_a_clip_that_resembles_everyone():
    """Two pairs with the same cosine: the pair lying in a crowded region of the cohort scores lower."""
    from speaker_core.scoring import ScoreNorm
    rng = np.random.default_rng(2)
    hub = _unit(rng.standard_normal(16))
    crowd = _unit(hub + 0.35 * rng.standard_normal((60, 16)))
    others = _unit(rng.standard_normal((60, 16)))
    norm = ScoreNorm(np.concatenate([crowd, others]), top_k=20)
    def pair_near(centre, cos=0.8):
        u = _unit(centre + 0.05 * rng.standard_normal(16))
        v = _unit(rng.standard_normal(16) - (rng.standard_normal(16) @ u) * u)
        v = _unit(v - (v @ u) * u)
        return u, cos * u + np.sqrt(1 - cos ** 2) * v
    a1, b1 = pair_near(hub)
    lonely = _unit(rng.standard_normal(16) - 2.0 * hub)
    a2, b2 = pair_near(lonely)
    assert abs(cosine(a1, b1) - cosine(a2, b2)) < 1e-9
    assert norm.pair(a1, b1) < norm.pair(a2, b2)


def test_as_norm_meta_roundtrip_and_malformed():
    import pytest
    from speaker_core.scoring import ScoreNorm, scale_of
    norm = ScoreNorm(np.random.default_rng(0).standard_normal((10, 4)), top_k=50)
    assert norm.top_k == 10                                       # capped at the cohort size
    back = ScoreNorm.from_meta(norm.to_meta())
    assert back.top_k == 10 and np.allclose(back.cohort, norm.cohort, atol=1e-3)
    assert ScoreNorm.from_meta(None) is None
    for bad in ({"method": "z-norm"}, {"method": "as-norm", "cohort": [[1.0, 2.0]]},
                {"method": "as-norm", "cohort": [[np.nan, 1.0], [1.0, 0.0]]}, {"method": "as-norm"}, "x"):
        with pytest.raises(ValueError):
            ScoreNorm.from_meta(bad)
    assert scale_of({}) == "cosine" and scale_of({"calibration": {"scale": "as-norm"}}) == "as-norm"


def test_weighted_eer_equals_repeated_trials():
    rng = np.random.default_rng(3)
    t, n = rng.normal(1, 1, 300), rng.normal(-1, 1, 900)
    wt, wn = rng.integers(0, 4, 300), rng.integers(0, 4, 900)
    want = compute_eer(np.repeat(t, wt), np.repeat(n, wn))
    got = compute_eer(t, n, wt.astype(float), wn.astype(float))
    assert np.allclose(got, want)
    assert compute_eer(t, n, np.ones(300), None) == compute_eer(t, n)


def test_bootstrap_eer_is_paired_and_brackets_the_estimate():
    rng = np.random.default_rng(4)
    spk = np.repeat(np.arange(40), 5)                       # 40 speakers, 5 clips each
    voice = rng.normal(0, 1, 40)
    t_idx = [(i, j) for i in range(200) for j in range(i + 1, 200) if spk[i] == spk[j]]
    n_idx = [(i, j) for i in range(0, 200, 3) for j in range(1, 200, 7) if spk[i] != spk[j]]
    score = lambda i, j, noise: 2.0 * (spk[i] == spk[j]) - abs(voice[spk[i]] - voice[spk[j]]) + noise
    t = np.array([score(i, j, rng.normal()) for i, j in t_idx])
    n = np.array([score(i, j, rng.normal()) for i, j in n_idx])
    ts, ns = spk[[i for i, _ in t_idx]], spk[np.array(n_idx)]
    reps = bootstrap_eer(t, n, ts, ns, n_boot=300, seed=7)
    point = 100 * compute_eer(t, n)[0]
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert lo < point < hi and hi - lo > 1.0                # speakers vary: the interval is not degenerate
    assert np.array_equal(reps, bootstrap_eer(t, n, ts, ns, n_boot=300, seed=7))
    # paired: the same draws for a better scorer give a better EER in (nearly) every replicate
    better = bootstrap_eer(t + 0.5, n, ts, ns, n_boot=300, seed=7)
    assert np.mean(better < reps) > 0.9
    with pytest.raises(ValueError):
        bootstrap_eer(t, n, ts[:-1], ns)
