import json
import os

import numpy as np
import pytest
import torch

from speaker_core.data import (AudioCache, CropBatchSampler, TrainDataset, collate_train, collate_waves,
                               prepare, random_crop, read_manifest, split_speakers, tile_to)


def _labels():
    return {
        "a": [f"a/s{i:02d}" for i in range(30)],
        "b": [f"b/s{i}" for i in range(6)],
        "c": [f"c/s{i}" for i in range(3)],
    }


def test_split_disjoint_and_deterministic():
    lab = _labels()
    tr, dv = split_speakers(lab, dev_fraction=0.1, seed=0)
    assert not set(tr) & set(dv)
    assert set(tr) | set(dv) == {s for v in lab.values() for s in v}
    assert sum(s.startswith("a/") for s in dv) == 3
    assert sum(s.startswith("b/") for s in dv) == 1  # at least 1 for >= 5 speakers
    assert sum(s.startswith("c/") for s in dv) == 0  # < 5 speakers: all train
    # deterministic, independent of input order
    lab2 = {k: list(reversed(v)) for k, v in reversed(list(lab.items()))}
    assert split_speakers(lab2, 0.1, 0) == (tr, dv)
    assert split_speakers(lab, 0.1, 1) != (tr, dv)


def test_tile_and_crop_lengths():
    x = np.arange(5, dtype=np.float32)
    t = tile_to(x, 12)
    assert len(t) == 12 and list(t[:7]) == [0, 1, 2, 3, 4, 0, 1]
    rng = np.random.RandomState(0)
    long = np.arange(100, dtype=np.float32)
    for _ in range(20):
        c = random_crop(long, 30, rng)
        assert len(c) == 30 and c[-1] - c[0] == 29
    assert len(random_crop(x, 30, rng)) == 30
    w, l, y = collate_waves([(torch.ones(10), 1), (torch.arange(4.0), 2)])
    assert w.shape == (2, 10) and l.tolist() == [10, 10] and y.tolist() == [1, 2]
    assert w[1].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def _write_wav(path, n, sr=16000, seed=0):
    import soundfile as sf
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, np.random.RandomState(seed).uniform(-0.5, 0.5, n).astype(np.float32), sr)


def test_prepare_cache_and_dataset(tmp_path):
    root = tmp_path / "pool"
    rows = []
    for c, nspk in (("x", 6), ("y", 2)):
        for s in range(nspk):
            for k in range(2):
                rel = f"{c}/{s}/{k}.flac"
                sr = 8000 if c == "y" else 16000
                n = sr * (1 + k)
                _write_wav(str(root / rel), n, sr, seed=s * 10 + k)
                rows.append({"audio_filepath": rel, "duration": n / sr, "label": f"{c}/{s}", "corpus": c})
    with open(root / "manifest.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    out = tmp_path / "data"
    s = prepare(str(root), str(out))
    tr = read_manifest(str(out / "train.jsonl"))
    dv = read_manifest(str(out / "dev.jsonl"))
    assert len(tr) + len(dv) == len(rows) and len(dv) == 2
    assert all(os.path.isabs(r["audio_filepath"]) for r in tr)
    cache = AudioCache([r["audio_filepath"] for r in tr], cache_path=str(tmp_path / "c.npz"))
    # 8 kHz files are resampled to 16 kHz
    for i, r in enumerate(tr):
        assert abs(cache.length(i) - round(r["duration"] * 16000)) <= 2
    cache2 = AudioCache([r["audio_filepath"] for r in tr], cache_path=str(tmp_path / "c.npz"))
    assert np.array_equal(cache2.get_int16(3), cache.get_int16(3))
    ds = TrainDataset(tr, cache, seed=0)
    sampler = CropBatchSampler([r["duration"] for r in tr], batch_size=3, min_sec=0.5, max_sec=1.5, seed=0)
    dl = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate_train)
    nb = 0
    for w, l, y, idx, centres in dl:
        nb += 1
        assert w.shape[0] == 3 and 8000 <= w.shape[1] <= 24000 and (l == w.shape[1]).all()
        assert torch.isfinite(w).all()
    assert nb == len(sampler) > 0
    # DDP shares are disjoint
    a = CropBatchSampler([1.0] * 20, 2, seed=1, num_replicas=2, rank=0)
    b = CropBatchSampler([1.0] * 20, 2, seed=1, num_replicas=2, rank=1)
    ia = {i for batch in a for i, _ in batch}
    ib = {i for batch in b for i, _ in batch}
    assert not ia & ib and len(a) == len(b) == 5


def _clips(folder, n, seed=0):
    import soundfile as sf
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i}.wav"
        sf.write(p, (0.2 * rng.randn(800 + 37 * i)).astype(np.float32), 16000, subtype="PCM_16")
        paths.append(str(p))
    return paths


def test_cache_is_a_memory_map_reused_without_the_audio(tmp_path):
    paths = _clips(tmp_path / "wav", 5)
    memory = AudioCache(paths)                                     # no cache_path: in memory
    cache = AudioCache(paths, cache_path=str(tmp_path / "c" / "cache_train.npz"))
    assert isinstance(cache._data, np.memmap) and not isinstance(memory._data, np.memmap)
    assert (tmp_path / "c" / "cache_train.int16").exists() and (tmp_path / "c" / "cache_train.index.npz").exists()
    assert [cache.length(i) for i in range(5)] == [800 + 37 * i for i in range(5)]
    for i in range(5):
        assert np.array_equal(cache.get_int16(i), memory.get_int16(i))
        assert cache.get(i).dtype == np.float32 and np.abs(cache.get(i)).max() <= 1.0
    for p in paths:                                                # the second open reads only the cache
        os.remove(p)
    again = AudioCache(paths, cache_path=str(tmp_path / "c" / "cache_train"))
    assert np.array_equal(again.get_int16(4), memory.get_int16(4))
    # a loader worker started by spawn gets the path, not a copy of the samples
    import pickle
    blob = pickle.dumps(again)
    assert len(blob) < 2000 < 2 * sum(again.length(i) for i in range(5))
    assert np.array_equal(pickle.loads(blob).get_int16(2), memory.get_int16(2))


def test_cache_rebuilds_when_stale_or_incomplete(tmp_path):
    paths = _clips(tmp_path / "wav", 4)
    base = str(tmp_path / "cache_x")
    AudioCache(paths, cache_path=base)
    # another file list: rebuilt for it
    assert len(AudioCache(paths[:3], cache_path=base)) == 3
    # samples cut short (a full disk, a killed copy): rebuilt
    with open(base + ".int16", "r+b") as f:
        f.truncate(100)
    c = AudioCache(paths[:3], cache_path=base)
    assert c.length(2) == 800 + 74 and os.path.getsize(base + ".int16") == 2 * sum(c.length(i) for i in range(3))
    # an index that is not an npz at all: rebuilt, not a crash
    with open(base + ".index.npz", "wb") as f:
        f.write(b"garbage")
    assert AudioCache(paths[:3], cache_path=base).length(0) == 800


def test_cache_converts_the_old_in_memory_npz_without_decoding(tmp_path):
    from speaker_core.data import cache_key
    paths = _clips(tmp_path / "wav", 3)
    ref = AudioCache(paths)
    np.savez(tmp_path / "cache_train.npz", data=ref._data, off=ref._off, key=np.array(cache_key(paths)))
    for p in paths:
        os.remove(p)
    c = AudioCache(paths, cache_path=str(tmp_path / "cache_train.npz"))
    assert isinstance(c._data, np.memmap) and all(np.array_equal(c.get_int16(i), ref.get_int16(i)) for i in range(3))


def test_cache_decodes_in_parallel_in_manifest_order(tmp_path):
    paths = _clips(tmp_path / "wav", 64)
    one = AudioCache(paths, cache_path=str(tmp_path / "one"), workers=1)
    two = AudioCache(paths, cache_path=str(tmp_path / "two"), workers=2)
    assert np.array_equal(np.asarray(one._off), np.asarray(two._off))
    assert np.array_equal(np.asarray(one._data), np.asarray(two._data))


def test_cache_build_does_not_hang_after_torch_ran_on_threads(tmp_path):
    """The trainer builds its dev cache after the head prototypes ran on several threads; decoder processes forked
    from such a parent hung forever in their first resample. Run that order in a fresh interpreter, with a limit."""
    import subprocess
    import sys
    import soundfile as sf
    folder = tmp_path / "wav8k"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for i in range(64):   # 8 kHz: every clip goes through torchaudio's resampler
        sf.write(folder / f"{i}.wav", (0.2 * rng.randn(4000 + 50 * i)).astype(np.float32), 8000, subtype="PCM_16")
    code = (
        "import glob, sys, torch\n"
        "from speaker_core.data import AudioCache\n"
        "torch.set_num_threads(2)\n"
        "x = torch.randn(16, 80, 300)\n"
        "for _ in range(20): torch.nn.functional.conv1d(x, torch.randn(256, 80, 5)).sum()\n"
        "c = AudioCache(sorted(glob.glob(sys.argv[1] + '/*.wav')), cache_path=sys.argv[2], workers=2)\n"
        "print(len(c))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # its own process group, so a hang takes its decoder processes down with it
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), str(tmp_path / "cache")], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise AssertionError("building the cache hung for 120 s") from None
    assert proc.returncode == 0, stderr[-2000:]
    assert stdout.strip() == "64"


def test_prepare_from_a_folder_of_speakers(tmp_path, capsys):
    """No manifest: <corpus>/<speaker>/<session>/<clip>, as VoxCeleb is laid out. Broken files are left out and named."""
    import soundfile as sf
    from speaker_core.data import main_prepare
    root = tmp_path / "pool"
    for c in range(12):
        for s in range(2):
            d = root / "vox" / f"id{c:05d}" / f"video{s}"
            d.mkdir(parents=True)
            sf.write(d / "00001.wav", np.zeros(8000 + 160 * c, np.float32), 16000)
    (root / "vox" / "id00000" / "video0" / "notes.txt").write_text("not audio")     # ignored: not an audio name
    (root / "vox" / "id00001" / "video0" / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    (root / "vox" / "id00002" / "video1" / "empty.flac").write_bytes(b"")
    from test_audio import _encode   # VoxCeleb2 ships AAC in .m4a: its duration comes from the container
    _encode(np.full(24000, 0.1, np.float32), 16000, root / "vox" / "id00004" / "video1" / "00002.m4a", "aac", "mp4",
            16000, "mono")
    assert main_prepare(["--data", str(root), "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "left out 2 files" in out
    tr, dv = read_manifest(str(tmp_path / "d" / "train.jsonl")), read_manifest(str(tmp_path / "d" / "dev.jsonl"))
    assert len(tr) + len(dv) == 25 and len({r["label"] for r in dv}) == 1          # 10 % of 12 speakers
    m4a = next(r for r in tr + dv if r["audio_filepath"].endswith(".m4a"))
    assert abs(m4a["duration"] - 1.5) < 0.1
    assert not {r["label"] for r in tr} & {r["label"] for r in dv}
    r = next(r for r in tr + dv if r["label"] == "vox/id00003")
    assert r["corpus"] == "vox" and r["duration"] == round((8000 + 480) / 16000, 3) and os.path.isabs(r["audio_filepath"])
    summary = json.load(open(tmp_path / "d" / "split.json"))
    assert sorted(os.path.basename(p) for p in summary["skipped_files"]) == ["broken.wav", "empty.flac"]


def test_prepare_says_what_it_needs(tmp_path):
    import pytest
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no manifest.jsonl and no readable audio"):
        prepare(str(tmp_path / "empty"), str(tmp_path / "d"))


def test_cache_names_the_full_path_of_a_broken_file(tmp_path):
    import pytest
    paths = _clips(tmp_path / "spk1" / "video", 2)
    bad = tmp_path / "spk2" / "video" / "0.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(RuntimeError, match=f"{bad}.*run prepare again"):
        AudioCache(paths + [str(bad)], cache_path=str(tmp_path / "c"))
    assert not list(tmp_path.glob("c.*"))      # nothing half-written is left behind


def test_parallel_cache_build_stops_at_a_broken_file(tmp_path):
    import pytest
    paths = _clips(tmp_path / "wav", 64)
    bad = tmp_path / "wav" / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(RuntimeError, match="bad.wav"):
        AudioCache([str(bad)] + paths, cache_path=str(tmp_path / "c"), workers=2)
    assert not list(tmp_path.glob("c.*"))


def test_speaker_augmentation_labels_sped_up_crops_as_new_speakers():
    """speaker_speeds: a sped-up crop keeps the crop length, its pitch moves by the factor, and it is labelled
    as the k-th copy of its speaker; without it nothing changes."""
    class Tone:
        def __len__(self):
            return 2

        def get_int16(self, i):
            t = np.arange(16000 * 4) / 16000
            return (10000 * np.sin(2 * np.pi * (200 if i == 0 else 300) * t)).astype(np.int16)

    rows = [{"audio_filepath": "a.wav", "label": "a", "corpus": "c"},
            {"audio_filepath": "b.wav", "label": "b", "corpus": "c"}]
    ds = TrainDataset(rows, Tone(), seed=0, speaker_speeds=(0.9, 1.1), p_speaker_speed=0.5)
    assert ds.class_labels == ["a", "b", "a@speed0.9", "b@speed0.9", "a@speed1.1", "b@speed1.1"]
    seen = set()
    for _ in range(60):
        w, y, i, _ = ds[(1, 16000)]
        assert w.shape == (16000,) and y % 2 == 1 and i == 1
        f0 = float(np.argmax(np.abs(np.fft.rfft(w.numpy()))))   # 1 Hz bins
        assert abs(f0 - 300 * (1.0, 0.9, 1.1)[y // 2]) <= 2, (y, f0)
        seen.add(y)
    assert seen == {1, 3, 5}
    plain = TrainDataset(rows, Tone(), seed=0)
    assert plain.class_labels == ["a", "b"] and all(plain[(0, 8000)][1] == 0 for _ in range(10))
    for bad in ((1.0,), (0.9, 0.9), (0.1,)):
        with pytest.raises(ValueError, match="speaker_speeds"):
            TrainDataset(rows, Tone(), speaker_speeds=bad, p_speaker_speed=0.5)
    with pytest.raises(ValueError, match="p_speaker_speed"):
        TrainDataset(rows, Tone(), speaker_speeds=(1.1,), p_speaker_speed=1.5)


def test_cache_with_edges_holds_the_edged_clips_under_its_own_key(tmp_path):
    import soundfile as sf
    from speaker_core.audio import CANONICAL_EDGES, canonical_edges
    from speaker_core.data import cache_key, load_wave
    rng = np.random.RandomState(3)
    t = np.arange(8000) / 16000
    words = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    wave = np.concatenate([1e-4 * rng.randn(24000), words, 1e-4 * rng.randn(16000)]).astype(np.float32)
    p = tmp_path / "w.wav"
    sf.write(p, wave, 16000, subtype="PCM_16")
    edges = dict(CANONICAL_EDGES)
    base = str(tmp_path / "cache_train_edges")
    c = AudioCache([str(p)], cache_path=base, edges=edges)
    want = canonical_edges(load_wave(str(p)), **edges)
    assert c.length(0) == want.size < wave.size + 3 * 16000          # 1.5 s of silence cut, 3 s of pad added
    assert np.abs(c.get(0) - want).max() < 1e-4
    assert c.key == cache_key([str(p)], edges) != cache_key([str(p)])
    # the same files without edges do not reuse the edged samples
    assert AudioCache([str(p)], cache_path=base).length(0) == wave.size


def test_source_noise_stays_off_the_canonical_padding():
    """p_source_noise (rule 52): noise on the crop's samples that came from the recording, at a ratio within
    source_snr of their power, and none on the canonical padding around it; off by default."""
    from speaker_core.augment import colored_noise

    pad = 16000

    class Edged:
        def __len__(self):
            return 1

        def get_int16(self, i):   # 1 s of quiet padding, 2 s of a loud tone, 1 s of padding
            tone = (8000 * np.sin(2 * np.pi * 300 * np.arange(32000) / 16000)).astype(np.int16)
            return np.concatenate([np.full(pad, 3, np.int16), tone, np.full(pad, 3, np.int16)])

    clip = torch.from_numpy(Edged().get_int16(0).astype(np.float32) / 32768.0)
    inner = np.zeros(clip.numel(), bool)
    inner[pad:-pad] = True
    rows = [{"audio_filepath": "a.wav", "label": "a", "corpus": "c"}]
    ds = TrainDataset(rows, Edged(), seed=0, source_noise=lambda n, rng: colored_noise(n, rng, 0.0),
                      p_source_noise=1.0, source_snr=(10.0, 10.0), pad_samples=pad)
    for _ in range(10):   # a 2.5 s crop always holds some padding
        w, _, _, centre = ds[(0, 40000)]
        start = int(round(centre - 20000))
        ref, m = clip[start:start + 40000], torch.from_numpy(inner[start:start + 40000])
        added = w - ref
        assert float(added[~m].abs().max()) == 0.0                       # the padding is untouched
        snr = 10 * np.log10(float(ref[m].pow(2).mean() / added[m].pow(2).mean()))
        assert abs(snr - 10.0) < 0.5, snr
    plain = TrainDataset(rows, Edged(), seed=0)
    w, _, _, centre = plain[(0, 40000)]
    start = int(round(centre - 20000))
    assert torch.equal(w, clip[start:start + 40000])
    with pytest.raises(ValueError, match="p_source_noise"):
        TrainDataset(rows, Edged(), p_source_noise=0.5)                  # no noise source
