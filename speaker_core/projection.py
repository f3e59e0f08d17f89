"""2-D projection of speaker embeddings (the "voice map").

UMAP (cosine metric) when there are enough points for a neighbourhood graph,
PCA otherwise. UMAP's first fit in a process spends ~10 s compiling numba code:
``warm_up()`` does that in a background thread at start-up so the first map a
user asks for does not wait.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

UMAP_MIN_POINTS = 12
_warm_thread: threading.Thread | None = None
_warm_done = threading.Event()
_umap_lock = threading.Lock()


def _pca(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    if n == 0:
        return np.zeros((0, 2), np.float32)
    xc = x - x.mean(axis=0, keepdims=True)
    if n == 1 or not np.any(xc):
        return np.zeros((n, 2), np.float32)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    coords = u[:, :2] * s[:2]
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((n, 2 - coords.shape[1]))])
    # deterministic orientation: largest-magnitude entry of each axis positive
    for k in range(2):
        col = coords[:, k]
        if col[np.argmax(np.abs(col))] < 0:
            coords[:, k] = -col
    return coords.astype(np.float32)


def _umap(x: np.ndarray, seed: int = 0) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap  # heavy import: numba

        n = x.shape[0]
        reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)),
                            min_dist=0.3, metric="cosine", random_state=seed,
                            init="random" if n < 20 else "spectral", n_jobs=1)
        with _umap_lock:
            return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def project(embeddings, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """Project (N, D) embeddings to (N, 2). Returns (coords, method actually used).

    ``method``: "auto" (UMAP from UMAP_MIN_POINTS points up, else PCA), "umap" or "pca".
    UMAP needs more than a handful of points, so "umap" on too few points falls
    back to PCA too; so does a UMAP failure (logged).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError("embeddings must be a 2-D array")
    if method not in ("auto", "umap", "pca"):
        raise ValueError(f"unknown projection method {method!r}")
    n = x.shape[0]
    want_umap = method == "umap" or (method == "auto" and n >= UMAP_MIN_POINTS)
    if want_umap and n >= 5:
        try:
            return _umap(x, seed), "umap"
        except Exception:  # numerical corner cases (e.g. duplicate points)
            log.exception("UMAP failed; falling back to PCA")
    return _pca(x), "pca"


def warm_up(background: bool = True) -> threading.Thread | None:
    """Compile UMAP's numba code with a tiny fit (once per process)."""
    global _warm_thread

    def run():
        try:
            _umap(np.random.default_rng(0).standard_normal((24, 8)).astype(np.float32))
        except Exception:  # never break start-up over a warm-up
            log.exception("UMAP warm-up failed")
        finally:
            _warm_done.set()

    if _warm_done.is_set():
        return None
    if not background:
        run()
        return None
    if _warm_thread is None or not _warm_thread.is_alive():
        _warm_thread = threading.Thread(target=run, name="umap-warm-up", daemon=True)
        _warm_thread.start()
    return _warm_thread


def is_warm() -> bool:
    return _warm_done.is_set()


def _short(label: str, n: int = 28) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def plot_voice_map(coords: np.ndarray, labels: Sequence[str], *,
                   reference: Sequence[bool] | None = None,
                   query: np.ndarray | None = None, query_label: str = "latest query",
                   title: str = "Voice map", method: str = ""):
    """Scatter plot of projected embeddings coloured by speaker, with a legend.

    ``reference[i]`` marks bundled reference clips (drawn smaller, hollow);
    ``query`` is a 2-D point highlighted with a star.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    # phone-first: 6.4 in wide with the legend under the map in two columns (a side legend left the map and its
    # 8 pt names a few pixels tall on a 390 px screen)
    n_legend = len(dict.fromkeys(labels)) + (query is not None)
    fig = Figure(figsize=(6.4, 5.4 + 0.28 * ((n_legend + 1) // 2)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
    labels = list(labels)
    reference = list(reference) if reference is not None else [False] * len(labels)
    if len(labels) == 0 and query is None:
        ax.text(0.5, 0.5, "Nothing to map yet.\nEnroll speakers to see them here.",
                ha="center", va="center", fontsize=13, color="#555", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    order = list(dict.fromkeys(labels))
    enrolled = [s for s in order if not any(r for lab, r in zip(labels, reference) if lab == s)]
    refs = [s for s in order if s not in enrolled]
    cmap = matplotlib.colormaps["tab10"]     # distinct hues; the marker changes every 10
    ref_cmap = matplotlib.colormaps["Dark2"]
    shapes = ["o", "s", "^", "D", "v", "P"]
    for i, spk in enumerate(enrolled):
        idx = [k for k, lab in enumerate(labels) if lab == spk]
        ax.scatter(coords[idx, 0], coords[idx, 1], s=70, color=cmap(i % 10),
                   marker=shapes[(i // 10) % len(shapes)], edgecolors="black", linewidths=0.6,
                   label=_short(spk), zorder=3)
    for i, spk in enumerate(refs):
        idx = [k for k, lab in enumerate(labels) if lab == spk]
        ax.scatter(coords[idx, 0], coords[idx, 1], s=35, facecolors="none",
                   edgecolors=ref_cmap(i % 8), linewidths=1.5, marker="o",
                   label=_short(spk), zorder=2)
    if query is not None:
        q = np.asarray(query, dtype=np.float32).reshape(2)
        ax.scatter([q[0]], [q[1]], s=320, marker="*", color="#e8112d", edgecolors="black",
                   linewidths=1.0, label=_short(query_label), zorder=5)
    ax.set_title(title + (f"  ({method.upper()})" if method else ""), fontsize=13)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), fontsize=12, frameon=False, ncol=2,
              title="filled: enrolled · hollow: reference", title_fontsize=12)
    return fig


def figure_png(fig, path: str | None = None) -> bytes:
    """Render a figure to PNG bytes (and write it to ``path`` if given)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    data = buf.getvalue()
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return data
