"""Voice-map projection (UMAP / PCA fallback) and plotting."""
import numpy as np
import pytest

from speaker_core import projection as P


def clusters(k=3, n=6, d=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 3
    x = np.concatenate([c + 0.3 * rng.standard_normal((n, d)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(k), n)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 11])
def test_few_points_use_pca(n):
    x = np.random.default_rng(n).standard_normal((n, 16)).astype(np.float32)
    coords, method = P.project(x)
    assert method == "pca" and coords.shape == (n, 2) and np.all(np.isfinite(coords))


def test_pca_is_deterministic_and_separates():
    x, y = clusters(k=2, n=4)
    c1, _ = P.project(x, method="pca")
    c2, _ = P.project(x[::-1].copy()[::-1], method="pca")
    np.testing.assert_allclose(c1, c2, atol=1e-5)
    gap = abs(c1[y == 0, 0].mean() - c1[y == 1, 0].mean())
    assert gap > 5 * c1[y == 0, 0].std()


def test_identical_points_do_not_crash():
    coords, method = P.project(np.ones((4, 8), np.float32))
    assert method == "pca" and np.all(coords == 0)
    coords, method = P.project(np.ones((15, 8), np.float32))  # degenerate for UMAP too
    assert coords.shape == (15, 2) and np.all(np.isfinite(coords))


def test_umap_for_enough_points_keeps_clusters_apart():
    x, y = clusters(k=3, n=6)
    P.warm_up(background=False)
    assert P.is_warm()
    coords, method = P.project(x)
    assert method == "umap" and coords.shape == (18, 2)
    centroids = np.stack([coords[y == k].mean(0) for k in range(3)])
    spread = max(np.linalg.norm(coords[y == k] - centroids[k], axis=1).max() for k in range(3))
    nearest = min(np.linalg.norm(centroids[i] - centroids[j])
                  for i in range(3) for j in range(3) if i < j)
    assert nearest > spread


def test_bad_arguments():
    with pytest.raises(ValueError):
        P.project(np.zeros(5))
    with pytest.raises(ValueError):
        P.project(np.zeros((3, 4)), method="tsne")


def test_plot_voice_map_legend_query_and_png(tmp_path):
    x, y = clusters(k=2, n=3)
    coords, method = P.project(x)
    labels = ["Alice"] * 3 + ["ref librispeech-40"] * 3
    long_name = "A" * 80
    labels[0] = labels[1] = labels[2] = long_name
    fig = P.plot_voice_map(coords, labels, reference=[False] * 3 + [True] * 3,
                           query=np.array([0.0, 0.0]), method=method)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "latest query" in texts and "ref librispeech-40" in texts
    assert any(t.endswith("…") and len(t) <= 28 for t in texts)  # long names shortened
    png = P.figure_png(fig, str(tmp_path / "map.png"))
    assert png[:4] == b"\x89PNG" and (tmp_path / "map.png").read_bytes() == png


def test_empty_plot_says_so():
    fig = P.plot_voice_map(np.zeros((0, 2)), [])
    assert "Nothing to map yet" in " ".join(t.get_text() for t in fig.axes[0].texts)
