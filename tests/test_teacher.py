import numpy as np
import pytest
import torch

from speaker_core.data import TrainDataset, collate_train
from speaker_core.teacher import TeacherTable, load_teacher, window_starts


def _table(counts, hop, win, dim=4):
    """A table whose row r is the unit vector that encodes r, so a lookup says which window it chose."""
    m = int(sum(counts))
    emb = torch.zeros(m, dim)
    emb[:, 0] = 1.0
    emb[:, 1] = torch.arange(m, dtype=torch.float32) / 1000.0
    return TeacherTable(emb, np.array(counts), hop, win)


def _row(table, e):
    return int(round(float(e[1] / e[0]) * 1000))


def test_window_starts():
    assert window_starts(100, 40, 20).tolist() == [0, 20, 40, 60]
    assert window_starts(40, 40, 20).tolist() == [0]
    assert window_starts(10, 40, 20).tolist() == [0]
    assert window_starts(59, 40, 20).tolist() == [0]       # the tail shorter than a hop has no window of its own


def test_lookup_picks_the_nearest_window_of_the_right_file():
    t = _table([1, 4, 2], hop=20, win=40)                   # rows: file 0 -> 0, file 1 -> 1..4, file 2 -> 5..6
    idx = torch.tensor([0, 1, 1, 1, 1, 1, 2, 2])
    centres = torch.tensor([5.0, 20, 39, 41, 75, 500, -10, 40])
    got = [_row(t, e) for e in t.lookup(idx, centres)]
    # windows centre at 20, 40, ...; a centre past the last window takes the last one, before the first the first
    assert got == [0, 1, 2, 2, 4, 4, 5, 6]


def test_whole_file_table_ignores_centres(tmp_path):
    emb = np.random.RandomState(0).randn(3, 5).astype(np.float32)
    np.save(tmp_path / "t.npy", emb)
    t = load_teacher(str(tmp_path / "t.npy"), n_rows=3)
    idx = torch.tensor([2, 0])
    a = t.lookup(idx, torch.tensor([1e6, 3.0]))
    ref = torch.nn.functional.normalize(torch.from_numpy(emb), dim=-1)[idx]
    assert torch.allclose(a, ref) and torch.allclose(t.lookup(idx), ref) and t.dim == 5
    with pytest.raises(ValueError, match="manifest has 4 rows"):
        load_teacher(str(tmp_path / "t.npy"), n_rows=4)


def test_window_table_file_round_trip_and_bad_counts(tmp_path):
    emb = np.random.RandomState(1).randn(5, 3).astype(np.float32)
    np.savez(tmp_path / "w.npz", emb=emb, count=np.array([2, 3]), hop=8000, win=40000)
    t = load_teacher(str(tmp_path / "w.npz"), n_rows=2)
    assert len(t) == 2 and t.hop == 8000 and t.win == 40000
    assert torch.allclose(t.lookup(torch.tensor([1]), torch.tensor([20000.0 + 8000])),
                          torch.nn.functional.normalize(torch.from_numpy(emb[3:4]), dim=-1))
    with pytest.raises(ValueError, match="do not add up"):
        TeacherTable(torch.zeros(5, 3), np.array([2, 2]))
    with pytest.raises(ValueError, match="do not add up"):
        TeacherTable(torch.zeros(2, 3), np.array([2, 0]))


def test_training_crops_find_the_window_they_came_from():
    """The dataset's crop centre, looked up in a window table, names the window that holds the crop."""
    n_samples, win, hop, crop = 16000 * 6, 40000, 8000, 36000

    class Ramp:                  # sample k holds k // 4, so a crop's first sample says where it starts
        def __len__(self):
            return 1

        def get_int16(self, i):
            return (np.arange(n_samples) // 4).astype(np.int16)

    starts = window_starts(n_samples, win, hop)
    table = _table([len(starts)], hop, win)
    ds = TrainDataset([{"audio_filepath": "x.wav", "label": "a", "corpus": "c"}], Ramp(), seed=3)
    for _ in range(30):
        w, _, _, i, centre = collate_train([ds[(0, crop)]])
        start = int(round(float(w[0, 0]) * 32768)) * 4          # int16 -> float is x / 32768
        j = _row(table, table.lookup(i, centre)[0])
        # the chosen window's centre is within half a hop of the crop's
        assert abs((starts[j] + win / 2) - (start + crop / 2)) <= hop / 2 + 4


def test_batched_teacher_matches_one_by_one():
    pytest.importorskip("resemblyzer")
    from speaker_core.teacher import resemblyzer_encoder, teacher_embed, teacher_embed_many
    rng = np.random.RandomState(0)
    t = np.arange(16000 * 3) / 16000
    waves = [(0.3 * np.sin(2 * np.pi * f * t[:n]) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t[:n]))
              + 0.01 * rng.randn(n)).astype(np.float32) for f, n in ((150, 48000), (220, 20000), (310, 36000))]
    enc = resemblyzer_encoder("cpu")
    one = np.stack([teacher_embed(enc, w) for w in waves])
    many = teacher_embed_many(enc, waves)
    assert many.shape == (3, 256) and np.abs(one - many).max() < 1e-5


def test_window_table_made_from_other_audio_is_refused(tmp_path):
    emb = np.random.RandomState(2).randn(3, 4).astype(np.float32)
    np.savez(tmp_path / "w.npz", emb=emb, count=np.array([1, 2]), hop=8000, win=40000, cache_key="aaaa")
    assert len(load_teacher(str(tmp_path / "w.npz"), n_rows=2, cache_key="aaaa")) == 2
    with pytest.raises(ValueError, match="other audio"):
        load_teacher(str(tmp_path / "w.npz"), n_rows=2, cache_key="bbbb")
    np.savez(tmp_path / "old.npz", emb=emb, count=np.array([1, 2]), hop=8000, win=40000)   # tables made before
    assert len(load_teacher(str(tmp_path / "old.npz"), n_rows=2, cache_key="bbbb")) == 2
    with pytest.raises(ValueError, match="other audio"):   # an old table is of clips without edges
        load_teacher(str(tmp_path / "old.npz"), n_rows=2, cache_key="bbbb", edged=True)
