"""The one place that defines the score scale and the verification metrics.

Scores are **raw cosine similarities in [-1, 1]** of L2-normalised embeddings. NeMo's ``verify_speakers``
reports ``(cos + 1) / 2`` with a 0.7 threshold; on our scale that is cosine 0.4, our ``DEFAULT_THRESHOLD``
(used only when a checkpoint carries no calibration from its dev set).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

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


def _arrays(target, nontarget):
    t = np.asarray(target, dtype=np.float64).ravel()
    n = np.asarray(nontarget, dtype=np.float64).ravel()
    if t.size == 0 or n.size == 0:
        raise ValueError("need at least one target and one non-target score")
    return t, n


def error_rates(target, nontarget) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every distinct threshold (decision: accept if score >= threshold).

    Returns ``(thresholds, p_miss, p_fa)`` with thresholds ascending; the first threshold accepts everything
    (p_miss 0, p_fa 1) and a final +inf rejects everything (p_miss 1, p_fa 0).
    """
    t, n = _arrays(target, nontarget)
    thr = np.unique(np.concatenate([t, n]))
    ts, ns = np.sort(t), np.sort(n)
    p_miss = np.searchsorted(ts, thr, side="left") / t.size     # targets below threshold are rejected
    p_fa = 1.0 - np.searchsorted(ns, thr, side="left") / n.size  # non-targets >= threshold are accepted
    thr = np.append(thr, np.inf)
    p_miss = np.append(p_miss, 1.0)
    p_fa = np.append(p_fa, 0.0)
    return thr, p_miss, p_fa


def compute_eer(target, nontarget) -> Tuple[float, float]:
    """Equal error rate (fraction in [0, 1]) and the threshold (on the input scale) where it occurs.

    Uses the step ROC: at each candidate threshold EER is taken as the mean of miss and false-alarm
    rate where they cross, i.e. ``min over thresholds of max(p_miss, p_fa)`` refined by averaging the two
    neighbouring operating points. Perfect separation gives 0 with a threshold between the classes.
    """
    t, n = _arrays(target, nontarget)
    thr, pm, pf = error_rates(t, n)
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


def plot_scores(path: str, sets: dict, title: str = "", threshold: Optional[float] = None) -> str:
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
    bins = np.linspace(-1, 1, 81)
    ax2.hist(np.asarray(n), bins=bins, alpha=0.6, density=True, label=f"non-target ({len(n)})")
    ax2.hist(np.asarray(t), bins=bins, alpha=0.6, density=True, label=f"target ({len(t)})")
    if threshold is not None:
        ax2.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    ax2.set_xlabel("cosine score")
    ax2.set_title(f"scores: {first}")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
