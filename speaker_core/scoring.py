"""The one place that defines the score scale and the verification metrics.

Two scales, chosen by the checkpoint:

* ``"cosine"``: the cosine similarity in [-1, 1] of L2-normalised embeddings. NeMo's ``verify_speakers``
  reports ``(cos + 1) / 2`` with a 0.7 threshold; on our scale that is cosine 0.4, our ``DEFAULT_THRESHOLD``
  (used only when a checkpoint carries no calibration from its dev set). Every ``.nemo`` import uses this.
* ``"as-norm"``: adaptive symmetric score normalisation (Matejka et al., Interspeech 2017). The cosine ``s``
  of embeddings ``a`` and ``b`` becomes ``((s - mu_a) / sd_a + (s - mu_b) / sd_b) / 2``, where ``mu_x``, ``sd_x``
  are the mean and spread of ``x``'s ``top_k`` highest cosines with a cohort of *training* speakers. It says
  how far above the voices most similar to each clip the pair scores, so a clip that resembles everyone (a
  noisy or short one, or a corpus whose channel pushes all cosines up) no longer looks like a match. Our
  shipped checkpoints carry their cohort (``meta["score_norm"]``) and a threshold calibrated on this scale.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch

DEFAULT_THRESHOLD = 0.4          # cosine; == NeMo's 0.7 on the (cos + 1) / 2 scale
NEMO_DEFAULT_THRESHOLD = 0.7     # the same threshold on NeMo's scale


def to_nemo_scale(cos):
    """Raw cosine -> NeMo's (cos + 1) / 2 score (monotone, so EER and ranking are unchanged)."""
    if isinstance(cos, torch.Tensor):
        return (cos + 1.0) / 2.0
    return (np.asarray(cos, dtype=np.float64) + 1.0) / 2.0 if not np.isscalar(cos) else (float(cos) + 1.0) / 2.0


def from_nemo_scale(score):
    if isinstance(score, torch.Tensor):
        return score * 2.0 - 1.0
    return np.asarray(score, dtype=np.float64) * 2.0 - 1.0 if not np.isscalar(score) else float(score) * 2.0 - 1.0


def l2_normalize(x, eps: float = 1e-12):
    if isinstance(x, torch.Tensor):
        return torch.nn.functional.normalize(x.float(), dim=-1, eps=eps)
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def cosine(a, b):
    """Cosine similarity of embeddings (last axis). Works on (D,) pairs (-> float) or row-aligned (N, D) batches."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a = torch.as_tensor(a, dtype=torch.float32)
        b = torch.as_tensor(b, dtype=torch.float32)
        s = (l2_normalize(a) * l2_normalize(b)).sum(-1)
        return float(s) if s.ndim == 0 else s
    s = (l2_normalize(a) * l2_normalize(b)).sum(-1)
    return float(s) if np.ndim(s) == 0 else s


class ScoreNorm:
    """AS-norm against a fixed cohort of unit-length training-speaker voiceprints ``(C, D)``.

    >>> rng = np.random.default_rng(0)
    >>> norm = ScoreNorm(rng.standard_normal((50, 8)), top_k=10)
    >>> a, b = rng.standard_normal((2, 8))
    >>> round(norm.pair(a, a), 2) > round(norm.pair(a, b), 2)
    True
    """

    def __init__(self, cohort, top_k: int = 200):
        c = np.asarray(cohort, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] < 2 or not np.isfinite(c).all():
            raise ValueError("the AS-norm cohort must be a finite (C, D) matrix with C >= 2")
        self.cohort = l2_normalize(c)                       # (C, D)
        self.top_k = int(max(1, min(int(top_k), c.shape[0])))

    @property
    def dim(self) -> int:
        return int(self.cohort.shape[1])

    def stats(self, emb) -> Tuple[np.ndarray, np.ndarray]:
        """Mean and spread of each row's top-k cohort cosines: (N, D) -> ((N,), (N,))."""
        e = l2_normalize(np.atleast_2d(np.asarray(emb, dtype=np.float64)))
        top = -np.partition(-(e @ self.cohort.T), self.top_k - 1, axis=1)[:, : self.top_k]   # (N, k)
        return top.mean(1), np.maximum(top.std(1), 1e-4)

    def normalize(self, raw, stats_a, stats_b):
        (ma, sa), (mb, sb) = stats_a, stats_b
        return 0.5 * ((raw - ma) / sa + (raw - mb) / sb)

    def pairs(self, a, b) -> np.ndarray:
        """Row-aligned (N, D) x (N, D) -> (N,) normalised scores."""
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        return self.normalize(cosine(a, b), self.stats(a), self.stats(b))

    def pair(self, a, b) -> float:
        return float(self.pairs(a, b)[0])

    def mean_pair(self, a, b) -> float:
        """Clip A's parts (ka, D) against clip B's (kb, D): the mean normalised score over the ka x kb part pairs
        (``parts_of``). One part each is ``pair``.

        >>> rng = np.random.default_rng(0)
        >>> norm, a, b = ScoreNorm(rng.standard_normal((50, 8))), rng.standard_normal((3, 8)), rng.standard_normal((2, 8))
        >>> bool(np.isclose(norm.mean_pair(a, b), np.mean([norm.pair(x, y) for x in a for y in b])))
        True
        """
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        (ma, sa), (mb, sb) = self.stats(a), self.stats(b)
        raw = l2_normalize(a) @ l2_normalize(b).T                                   # (ka, kb)
        return float(self.normalize(raw, (ma[:, None], sa[:, None]), (mb[None], sb[None])).mean())

    def against(self, query, prints) -> np.ndarray:
        """One query (D,) against N voiceprints (N, D) -> (N,) normalised scores."""
        prints = np.atleast_2d(prints)
        raw = l2_normalize(prints) @ l2_normalize(np.asarray(query, dtype=np.float64))
        mq, sq = self.stats(query)
        return self.normalize(raw, (mq[0], sq[0]), self.stats(prints))

    def to_meta(self) -> dict:
        return {"method": "as-norm", "top_k": self.top_k, "cohort": torch.from_numpy(self.cohort).half()}

    @classmethod
    def from_meta(cls, d) -> "ScoreNorm | None":
        """The checkpoint's ``meta["score_norm"]`` -> ScoreNorm, None when absent; ValueError when malformed."""
        if not d:
            return None
        if not isinstance(d, dict) or d.get("method") != "as-norm":
            raise ValueError("unknown score normalisation (expected method 'as-norm')")
        c = d.get("cohort")
        if isinstance(c, torch.Tensor):
            c = c.float().numpy()
        return cls(c, top_k=int(d.get("top_k", 200)))


def scale_of(meta: dict) -> str:
    """The score scale a checkpoint's calibration is on (old checkpoints: cosine)."""
    return str((meta.get("calibration") or {}).get("scale", "cosine"))


def threshold_of(meta: dict) -> float:
    """The checkpoint's calibrated threshold, DEFAULT_THRESHOLD when it has none; ValueError when it is malformed.

    >>> threshold_of({"calibration": {"threshold": 1.5}}), threshold_of({})
    (1.5, 0.4)
    """
    cal = meta.get("calibration")
    if cal is None:
        return DEFAULT_THRESHOLD
    if not isinstance(cal, dict):
        raise ValueError("malformed calibration (not a mapping).")
    t = cal.get("threshold", DEFAULT_THRESHOLD)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ValueError(f"malformed calibration (the threshold {str(t)[:40]!r} is not a finite number).")
    return float(t)


def score_norm_of(meta: dict, dim: int) -> "ScoreNorm | None":
    """The checkpoint's AS-norm when its calibration is on that scale, else None (cosine).
    ValueError when it is calibrated for AS-norm but its cohort is missing, malformed or of the wrong size."""
    if scale_of(meta) != "as-norm":
        return None
    try:
        norm = ScoreNorm.from_meta(meta.get("score_norm"))
    except ValueError as e:
        raise ValueError(f"malformed score normalisation ({e}).") from None
    if norm is None or norm.dim != dim:
        raise ValueError("calibrated for AS-norm scores but carries no usable cohort.")
    return norm


def parts_of(meta: dict) -> float | None:
    """Seconds per part when the checkpoint scores long clips in parts of their words (``meta["scoring"] =
    {"parts": 2.0}``, written by ``fuse --parts``; ``audio.word_parts``), else None: one embedding per clip.
    ValueError when the setting is malformed.

    Why (rule 45, checkpoints/HISTORY.md "Session 32"): the threshold is calibrated where most dev pairs are, 1-3 s
    of words, and a long clip's single embedding puts its pairs on another scale (the fusion accepted 21.8 % of the
    different-speaker dev pairs with >= 6 s of words on both sides). The mean over 2 s part pairs stays on the
    threshold's scale and spreads less: 5.6 % there, with every pair of shorter clips scored as before.

    >>> parts_of({}), parts_of({"scoring": {"parts": 2}})
    (None, 2.0)
    """
    d = meta.get("scoring")
    if d is None:
        return None
    p = d.get("parts") if isinstance(d, dict) else None
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.5 <= p <= 30:
        raise ValueError(f"malformed scoring setting ({str(d)[:60]!r}; expected {{'parts': 0.5-30 seconds}}).")
    return float(p)


def part_cut_of(meta: dict) -> str:
    """How a checkpoint that scores in parts cuts a clip (``audio.word_parts``): ``"words"`` when its setting says
    so (``meta["scoring"]["cut"]``, rule 48: every part an equal share of the word frames), else ``"time"`` (rule
    45's equal-time parts, the setting of files written before rule 48). ValueError when malformed.

    >>> part_cut_of({}), part_cut_of({"scoring": {"parts": 2.0}}), part_cut_of({"scoring": {"parts": 2.0, "cut": "words"}})
    ('time', 'time', 'words')
    """
    d = meta.get("scoring")
    c = d.get("cut", "time") if isinstance(d, dict) else "time"
    if c not in ("time", "words"):
        raise ValueError(f"malformed scoring setting ({str(d)[:60]!r}; expected 'cut' to be 'time' or 'words').")
    return c


# A pair is "long" when both clips hold at least this many seconds of words (audio.speech_seconds). A long clip's one
# embedding scores higher for every pair, the same speaker or not (scoring in parts, ``parts_of``, undoes most of
# that), and the pooled calibration trials (mostly 1-2 s commands) say little about such pairs: calibration also
# keeps the long pairs' own scores (checkpoints/README.md, "Long recordings").
LONG_PAIR_SECONDS = 3.0


def calibration_samples(cal: dict, min_speech: float | None = None) -> tuple[list, list, dict | None]:
    """The calibration score samples that describe a pair: ``(target_scores, nontarget_scores, long_pairs)``.

    For a long pair (``min_speech``, its shorter clip's seconds of words, at least the stored ``min_speech_s``) and a
    checkpoint that kept its long pairs' scores, those samples and their description; else the pooled ones and None.

    >>> cal = {"target_scores": [1.0], "nontarget_scores": [0.0],
    ...        "long_pairs": {"min_speech_s": 3.0, "target_scores": [3.0], "nontarget_scores": [2.0]}}
    >>> calibration_samples(cal, 1.2)[:2], calibration_samples(cal, 4.0)[:2]
    (([1.0], [0.0]), ([3.0], [2.0]))
    """
    cal = cal if isinstance(cal, dict) else {}
    long = cal.get("long_pairs")
    try:   # a malformed entry (an edited checkpoint, a stale result) falls back to the pooled samples
        if (isinstance(long, dict) and min_speech is not None
                and float(min_speech) >= float(long.get("min_speech_s", LONG_PAIR_SECONDS))):
            samples = _samples(long)
            if samples is not None:
                return *samples, long
    except (TypeError, ValueError):
        pass
    return list(cal.get("target_scores") or []), list(cal.get("nontarget_scores") or []), None


def voiceprint_samples(cal: dict) -> tuple[list, list, dict] | None:
    """The calibration's clip-against-voiceprint scores (``evaluate.voiceprint_trials``), which explain an Identify
    result: ``(same-speaker scores, other-speaker scores, their description)``, or None when absent or malformed."""
    vp = cal.get("voiceprints") if isinstance(cal, dict) else None
    samples = _samples(vp) if isinstance(vp, dict) else None
    return None if samples is None else (*samples, vp)


def _samples(d: dict) -> tuple[list, list] | None:
    """``d``'s target and non-target score lists when both are non-empty lists of finite numbers, else None."""
    try:
        t, n = (np.asarray(d[k], dtype=np.float64) for k in ("target_scores", "nontarget_scores"))
    except (KeyError, TypeError, ValueError):
        return None
    if t.ndim == 1 and n.ndim == 1 and t.size and n.size and np.isfinite(t).all() and np.isfinite(n).all():
        return t.tolist(), n.tolist()
    return None


def _arrays(target, nontarget):
    t = np.asarray(target, dtype=np.float64).ravel()
    n = np.asarray(nontarget, dtype=np.float64).ravel()
    if t.size == 0 or n.size == 0:
        raise ValueError("need at least one target and one non-target score")
    return t, n


def error_rates(target, nontarget, target_weight=None, nontarget_weight=None
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every distinct threshold (decision: accept if score >= threshold).

    Returns ``(thresholds, p_miss, p_fa)`` with thresholds ascending; the first threshold accepts everything
    (p_miss 0, p_fa 1) and a final +inf rejects everything (p_miss 1, p_fa 0). Optional non-negative
    per-trial weights (as drawn by ``bootstrap_eer``) replace trial counts.
    """
    t, n = _arrays(target, nontarget)
    thr = np.unique(np.concatenate([t, n]))

    def below(x, w):   # weighted fraction of x strictly below each threshold
        order = np.argsort(x, kind="stable")
        w = np.ones(x.size) if w is None else np.asarray(w, dtype=np.float64).ravel()[order]
        cw = np.concatenate([[0.0], np.cumsum(w)])
        if cw[-1] <= 0:
            raise ValueError("trial weights must not all be zero")
        return cw[np.searchsorted(x[order], thr, side="left")] / cw[-1]

    p_miss = below(t, target_weight)             # targets below threshold are rejected
    p_fa = 1.0 - below(n, nontarget_weight)      # non-targets >= threshold are accepted
    thr = np.append(thr, np.inf)
    p_miss = np.append(p_miss, 1.0)
    p_fa = np.append(p_fa, 0.0)
    return thr, p_miss, p_fa


def compute_eer(target, nontarget, target_weight=None, nontarget_weight=None) -> Tuple[float, float]:
    """Equal error rate (fraction in [0, 1]) and the threshold (on the input scale) where it occurs.

    Uses the step ROC: at each candidate threshold EER is taken as the mean of miss and false-alarm
    rate where they cross, i.e. ``min over thresholds of max(p_miss, p_fa)`` refined by averaging the two
    neighbouring operating points. Perfect separation gives 0 with a threshold between the classes.
    """
    t, n = _arrays(target, nontarget)
    thr, pm, pf = error_rates(t, n, target_weight, nontarget_weight)
    diff = pm - pf                      # increases from -1 to +1 with the threshold
    i = int(np.searchsorted(diff, 0.0, side="left"))
    i = min(max(i, 1), len(thr) - 1)
    # operating points i-1 (pm <= pf) and i (pm >= pf)
    a, b = i - 1, i
    if diff[b] == 0:
        eer = pm[b]
        thr_b = thr[b]
        # threshold: midpoint between the scores around the crossing when separation is perfect
        if eer == 0.0:
            lo = n.max()
            hi = t.min()
            thr_b = (lo + hi) / 2.0
        return float(eer), float(thr_b)
    # linear interpolation of (pm - pf) between the two operating points
    w = -diff[a] / (diff[b] - diff[a])
    eer = float(pm[a] + w * (pm[b] - pm[a]))
    ta = thr[a]
    tb = thr[b] if np.isfinite(thr[b]) else thr[a]
    return eer, float(ta + w * (tb - ta))


def bootstrap_eer(target, nontarget, target_speaker, nontarget_speakers, n_boot: int = 1000,
                  seed: int = 0) -> np.ndarray:
    """EERs (%) of ``n_boot`` speaker-level bootstrap replicates of one trial list.

    Trials share speakers, so resampling trials understates the uncertainty. Each replicate instead draws the
    speakers with replacement: a speaker drawn ``c`` times weighs ``c`` in its target trials and ``c_a * c_b``
    in a non-target trial of speakers ``a`` and ``b``. ``target_speaker`` is ``(Nt,)`` speaker ids,
    ``nontarget_speakers`` ``(Nn, 2)``. The same ``seed`` on the same trials draws the same speakers, so two
    models' replicates can be subtracted pairwise. Replicates that lose every target or non-target trial
    are redrawn.

    >>> t, n = [0.9, 0.8, 0.3], [0.1, 0.4, 0.2]
    >>> reps = bootstrap_eer(t, n, [0, 1, 2], [[0, 1], [1, 2], [0, 2]], n_boot=50)
    >>> reps.shape, bool((reps >= 0).all() and (reps <= 100).all())
    ((50,), True)
    """
    t, n = _arrays(target, nontarget)
    ts = np.asarray(target_speaker).ravel()
    ns = np.asarray(nontarget_speakers).reshape(-1, 2)
    if ts.size != t.size or ns.shape[0] != n.size:
        raise ValueError("one speaker id per target trial and two per non-target trial are needed")
    ids, inv = np.unique(np.concatenate([ts, ns.ravel()]), return_inverse=True)
    ti, ni = inv[: ts.size], inv[ts.size:].reshape(-1, 2)
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_boot:
        c = rng.multinomial(ids.size, np.full(ids.size, 1.0 / ids.size)).astype(np.float64)
        wt, wn = c[ti], c[ni[:, 0]] * c[ni[:, 1]]
        if wt.sum() == 0 or wn.sum() == 0:
            continue
        keep_t, keep_n = wt > 0, wn > 0
        out.append(100.0 * compute_eer(t[keep_t], n[keep_n], wt[keep_t], wn[keep_n])[0])
    return np.asarray(out)


def min_dcf(target, nontarget, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0,
            normalize: bool = True) -> Tuple[float, float]:
    """Minimum detection cost (normalised by min(c_miss*p, c_fa*(1-p)) by default) and its threshold."""
    thr, pm, pf = error_rates(target, nontarget)
    dcf = c_miss * pm * p_target + c_fa * pf * (1.0 - p_target)
    if normalize:
        dcf = dcf / min(c_miss * p_target, c_fa * (1.0 - p_target))
    i = int(np.argmin(dcf))
    return float(dcf[i]), float(thr[i])


def det_curve(target, nontarget) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_fa, p_miss, thresholds) over all thresholds, ordered by increasing threshold."""
    thr, pm, pf = error_rates(target, nontarget)
    return pf, pm, thr


def accuracy_at(target, nontarget, threshold: float) -> dict:
    t, n = _arrays(target, nontarget)
    return {"threshold": float(threshold), "miss_rate": float(np.mean(t < threshold)),
            "false_accept_rate": float(np.mean(n >= threshold))}


def summarize_scores(target, nontarget, p_target: float = 0.01) -> dict:
    """EER (%), its threshold, minDCF and counts for a set of trials."""
    t, n = np.asarray(target, np.float64), np.asarray(nontarget, np.float64)
    out = {"n_target": int(t.size), "n_nontarget": int(n.size)}
    if t.size and n.size:
        eer, thr = compute_eer(t, n)
        dcf, dthr = min_dcf(t, n, p_target=p_target)
        out.update({"eer": 100.0 * eer, "eer_threshold": thr, f"min_dcf_p{p_target:g}": dcf,
                    "min_dcf_threshold": dthr})
    else:
        out.update({"eer": None, "eer_threshold": None, f"min_dcf_p{p_target:g}": None})
    return out


def plot_scores(path: str, sets: dict, title: str = "", threshold: Optional[float] = None,
                scale: str = "cosine") -> str:
    """Write a PNG with a DET curve (probit axes) per set and the target/non-target histogram of the first
    (pooled) set. ``sets`` maps a name to ``(target_scores, nontarget_scores)``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    lim = norm.ppf([0.0005, 0.5])
    for name, (t, n) in sets.items():
        if len(t) == 0 or len(n) == 0:
            continue
        pf, pm, _ = det_curve(t, n)
        eer, _ = compute_eer(t, n)
        clip = lambda p: norm.ppf(np.clip(p, 0.0005, 0.9995))
        ax1.plot(clip(pf), clip(pm), label=f"{name} (EER {100 * eer:.2f}%)", lw=2 if name == "pooled" else 1)
    ax1.set_xticks(norm.ppf(ticks))
    ax1.set_xticklabels([f"{100 * x:g}" for x in ticks])
    ax1.set_yticks(norm.ppf(ticks))
    ax1.set_yticklabels([f"{100 * x:g}" for x in ticks])
    ax1.set_xlim(*lim)
    ax1.set_ylim(*lim)
    ax1.plot(lim, lim, "k:", lw=0.5)
    ax1.set_xlabel("false accept rate (%)")
    ax1.set_ylabel("miss rate (%)")
    ax1.set_title("DET")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=7, loc="upper right")
    first = next(iter(sets))
    t, n = sets[first]
    both = np.concatenate([np.asarray(t, np.float64), np.asarray(n, np.float64)])
    bins = np.linspace(-1, 1, 81) if both.size == 0 or np.abs(both).max() <= 1 else 80
    ax2.hist(np.asarray(n), bins=bins, alpha=0.6, density=True, label=f"non-target ({len(n)})")
    ax2.hist(np.asarray(t), bins=bins, alpha=0.6, density=True, label=f"target ({len(t)})")
    if threshold is not None:
        ax2.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    ax2.set_xlabel(f"{scale} score")
    ax2.set_title(f"scores: {first}")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
