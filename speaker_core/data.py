"""Manifests, the speaker-disjoint split, the audio cache and the training dataset.

Manifests are NeMo-style JSON lines: ``{"audio_filepath", "duration", "label", "corpus", ...}``.

CLI (the lead wires ``main_prepare`` into ``python -m speaker_core prepare``)::

    python -m speaker_core.data --data ../shared/data/speech --out data/

writes ``data/train.jsonl``, ``data/dev.jsonl`` (absolute paths) and ``data/split.json`` (summary).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import sys
import zipfile
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .augment import fit_length, resample_speed

SAMPLE_RATE = 16000


# --------------------------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------------------------
def read_manifest(path: str, base_dir: Optional[str] = None) -> List[dict]:
    """Read a JSON-lines manifest; relative ``audio_filepath`` are resolved against ``base_dir``
    (default: the manifest's folder). Missing ``corpus`` is derived from the label prefix."""
    base_dir = base_dir if base_dir is not None else os.path.dirname(os.path.abspath(path))
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            p = r["audio_filepath"]
            if not os.path.isabs(p):
                r["audio_filepath"] = os.path.normpath(os.path.join(base_dir, p))
            if "corpus" not in r:
                lab = str(r.get("label", ""))
                r["corpus"] = lab.split("/")[0] if "/" in lab else "default"
            rows.append(r)
    return rows


def write_manifest(path: str, rows: Iterable[dict]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------------
def split_speakers(labels_by_corpus: Dict[str, Iterable[str]], dev_fraction: float = 0.1,
                   seed: int = 0) -> Tuple[List[str], List[str]]:
    """Speaker-disjoint train/dev split, done per corpus.

    For every corpus: sort its unique speakers, shuffle them with a generator seeded by
    ``(seed, corpus)`` and put ``round(dev_fraction * n)`` of them in dev (at least 1 when the corpus
    has >= 5 speakers, none when it has fewer). Returns ``(train_speakers, dev_speakers)``, both sorted.
    The result only depends on the sets of labels, the fraction and the seed (not on dict/iteration order).
    """
    train: List[str] = []
    dev: List[str] = []
    for corpus in sorted(labels_by_corpus):
        spk = sorted(set(labels_by_corpus[corpus]))
        n = len(spk)
        n_dev = int(round(dev_fraction * n))
        if n >= 5:
            n_dev = max(1, n_dev)
        else:
            n_dev = 0
        n_dev = min(n_dev, max(n - 1, 0))
        rng = random.Random(f"{seed}:{corpus}")
        rng.shuffle(spk)
        dev.extend(spk[:n_dev])
        train.extend(spk[n_dev:])
    return sorted(train), sorted(dev)


def labels_by_corpus(rows: Sequence[dict]) -> Dict[str, List[str]]:
    d: Dict[str, set] = defaultdict(set)
    for r in rows:
        d[r.get("corpus", "default")].add(r["label"])
    return {k: sorted(v) for k, v in d.items()}


def summarize(rows: Sequence[dict]) -> Dict[str, dict]:
    """Speakers / files / minutes per corpus."""
    out: Dict[str, dict] = {}
    spk: Dict[str, set] = defaultdict(set)
    for r in rows:
        c = r.get("corpus", "default")
        e = out.setdefault(c, {"speakers": 0, "files": 0, "minutes": 0.0})
        e["files"] += 1
        e["minutes"] += float(r.get("duration", 0.0)) / 60.0
        spk[c].add(r["label"])
    for c in out:
        out[c]["speakers"] = len(spk[c])
        out[c]["minutes"] = round(out[c]["minutes"], 2)
    return dict(sorted(out.items()))


def manifest_from_folder(root: str, threads: int = 16) -> Tuple[List[dict], List[str]]:
    """Manifest rows for a folder laid out as ``<corpus>/<speaker>/.../<clip>`` (VoxCeleb:
    ``voxceleb1/id10001/1zcIwhmdeo4/00001.wav``; the layout ``evaluate`` reads too). Durations come from the
    file headers. Returns the rows and the files that could not be opened, which are left out."""
    from concurrent.futures import ThreadPoolExecutor

    from .audio import file_duration
    from .evaluate import items_from_folder
    items = items_from_folder(root)
    with ThreadPoolExecutor(threads) as ex:   # header reads wait on the disk, not the CPU
        durations = list(ex.map(file_duration, [it["path"] for it in items]))
    rows = [{"audio_filepath": os.path.abspath(it["path"]), "duration": round(d, 3), "label": it["speaker"],
             "corpus": it["set"]} for it, d in zip(items, durations) if d is not None]
    return rows, [it["path"] for it, d in zip(items, durations) if d is None]


def prepare(data_dir: str, out_dir: str, dev_fraction: float = 0.1, seed: int = 0) -> dict:
    """Speaker-disjoint train/dev manifests from ``<data_dir>/manifest.jsonl`` or, without one, from the
    folder layout of ``manifest_from_folder``."""
    data_dir = os.path.abspath(data_dir)
    skipped: List[str] = []
    if os.path.exists(os.path.join(data_dir, "manifest.jsonl")):
        rows = read_manifest(os.path.join(data_dir, "manifest.jsonl"), base_dir=data_dir)
    else:
        rows, skipped = manifest_from_folder(data_dir)
        if not rows:
            raise SystemExit(f"{data_dir} has no manifest.jsonl and no readable audio laid out as "
                             "<corpus>/<speaker>/.../<clip> (WAV, FLAC, OGG, MP3, M4A)"
                             + (f"; {len(skipped)} files could not be opened" if skipped else ""))
    train_spk, dev_spk = split_speakers(labels_by_corpus(rows), dev_fraction, seed)
    dev_set = set(dev_spk)
    train_rows = [r for r in rows if r["label"] not in dev_set]
    dev_rows = [r for r in rows if r["label"] in dev_set]
    os.makedirs(out_dir, exist_ok=True)
    write_manifest(os.path.join(out_dir, "train.jsonl"), train_rows)
    write_manifest(os.path.join(out_dir, "dev.jsonl"), dev_rows)
    summary = {
        "source": data_dir, "dev_fraction": dev_fraction, "seed": seed,
        "train": summarize(train_rows), "dev": summarize(dev_rows),
        "dev_speakers": dev_spk, "skipped_files": skipped,
    }
    with open(os.path.join(out_dir, "split.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def main_prepare(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core prepare",
                                 description="Write speaker-disjoint train/dev manifests.")
    ap.add_argument("--data", default="../shared/data/speech",
                    help="folder with manifest.jsonl, or with audio as <corpus>/<speaker>/.../<clip>")
    ap.add_argument("--out", default="data", help="output folder")
    ap.add_argument("--dev-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    s = prepare(a.data, a.out, a.dev_fraction, a.seed)
    for part in ("train", "dev"):
        tot = {k: sum(v[k] for v in s[part].values()) for k in ("speakers", "files", "minutes")}
        print(f"{part}: {tot['speakers']} speakers, {tot['files']} files, {tot['minutes']:.1f} min")
        for c, v in s[part].items():
            print(f"  {c:32s} {v['speakers']:4d} spk {v['files']:5d} files {v['minutes']:7.1f} min")
    if s["skipped_files"]:
        print(f"left out {len(s['skipped_files'])} files that could not be opened as audio (m4a/AAC: convert to "
              f"WAV or FLAC first), e.g. {s['skipped_files'][0]}; all are listed in {a.out}/split.json")
    print(f"wrote {os.path.join(a.out, 'train.jsonl')} and {os.path.join(a.out, 'dev.jsonl')}")
    return 0


# --------------------------------------------------------------------------------------------
# audio loading / cache
# --------------------------------------------------------------------------------------------
def load_wave(path: str) -> np.ndarray:
    """Mono float32 16 kHz via speaker_core.audio's reader and resampler, without its user-facing
    validation (training data holds 0.2 s digits that the app would reject)."""
    from .audio import read_file, to_mono_16k

    data, sr = read_file(path)
    return np.ascontiguousarray(to_mono_16k(data, sr), dtype=np.float32)


def int16_to_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 32768.0


def cache_key(paths: Sequence[str], edges: Optional[dict] = None) -> str:
    """What a cache is valid for: its exact list of files, in order, and the edge handling applied to them."""
    tail = [] if not edges else [f"edges={sorted(edges.items())}"]
    return hashlib.sha1("\n".join(list(paths) + tail).encode()).hexdigest()[:16]


def _wave_int16(path: str, edges: Optional[dict] = None) -> np.ndarray:
    try:
        x = load_wave(path)
    except Exception as e:   # the reader names only the file; 00001.wav is not enough in a VoxCeleb tree
        raise RuntimeError(f"{path}: {e} (remove it from the manifest, or run prepare again)") from None
    if edges:
        from .audio import canonical_edges
        x = canonical_edges(x, **edges)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def _decoded(paths: Sequence[str], workers: int, verbose: bool, edges: Optional[dict] = None
             ) -> Iterable[np.ndarray]:
    """int16 waves in manifest order, decoded in ``workers`` processes when there are many files."""
    if workers > 1 and len(paths) >= 64:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        # spawn, not fork: a child forked after torch has run ops on several threads can hang forever in its
        # first op (trainer's dev cache, built after the head prototypes, hung that way)
        ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(1,))
        try:
            for i, x in enumerate(ex.map(functools.partial(_wave_int16, edges=edges), paths, chunksize=16)):
                if verbose and i % 2000 == 0:
                    print(f"decoded {i}/{len(paths)} files", flush=True)
                yield x
        finally:
            ex.shutdown(cancel_futures=True)   # a broken file stops the build now, not after all the others
        return
    for p in paths:
        yield _wave_int16(p, edges)


def write_cache(base: str, pieces: Iterable[np.ndarray], key: str, off: Optional[np.ndarray] = None) -> np.ndarray:
    """Stream int16 ``pieces`` to ``<base>.int16``, then write ``<base>.index.npz`` (clip offsets and ``key``).

    ``off`` defaults to one clip per piece. The index is written last, so a cache cut off mid-way is never
    mistaken for a complete one. Returns the offsets.
    """
    os.makedirs(os.path.dirname(os.path.abspath(base)) or ".", exist_ok=True)
    tmp = f"{base}.int16.tmp{os.getpid()}"
    sizes = [0]
    try:
        with open(tmp, "wb") as f:
            for x in pieces:
                x = np.ascontiguousarray(x, dtype=np.int16)
                f.write(x.tobytes())
                sizes.append(len(x))
    except BaseException:
        os.remove(tmp)
        raise
    total = np.cumsum(sizes, dtype=np.int64)
    off = total if off is None else np.asarray(off, dtype=np.int64)
    if int(off[-1]) != int(total[-1]):
        os.remove(tmp)
        raise ValueError(f"{base}: wrote {int(total[-1])} samples, the offsets expect {int(off[-1])}")
    os.replace(tmp, base + ".int16")
    np.savez(f"{base}.index.tmp{os.getpid()}.npz", off=off, key=np.array(key))
    os.replace(f"{base}.index.tmp{os.getpid()}.npz", base + ".index.npz")
    return off


class AudioCache:
    """The waves of a manifest, decoded once to 16 kHz int16.

    With ``cache_path`` the samples live on disk in ``<cache_path>.int16`` and the clip offsets in
    ``<cache_path>.index.npz``, which also holds a hash of the file list, so a stale cache is rebuilt. A
    ``.npz`` suffix on ``cache_path`` is dropped. The build streams clip by clip to disk, in several processes.
    Reads go through a memory map, so memory stays flat however many hours the manifest holds: VoxCeleb2's
    ~2,400 h are 276 GB of int16. Loader workers share the mapped pages. Without ``cache_path``, the samples
    stay in memory. With ``edges`` (``audio.canonical_edges`` keyword arguments) every clip is stored with those
    edges, so that training crops come from clips edged as a checkpoint with ``meta["edges"]`` embeds them.
    """

    def __init__(self, paths: Sequence[str], cache_path: Optional[str] = None, verbose: bool = False,
                 workers: Optional[int] = None, edges: Optional[dict] = None):
        self.paths = list(paths)
        self.edges = dict(edges) if edges else None
        self.key = cache_key(self.paths, self.edges)
        workers = min(8, os.cpu_count() or 1) if workers is None else int(workers)
        self.base = None
        if not cache_path:
            waves = list(_decoded(self.paths, workers, verbose, self.edges))
            self._off = np.cumsum([0] + [len(w) for w in waves], dtype=np.int64)
            self._data = np.concatenate(waves) if waves else np.zeros(0, np.int16)
            return
        self.base = cache_path[:-4] if cache_path.endswith(".npz") else cache_path
        if self._open():
            return
        legacy = self.base + ".npz"   # the in-memory format of earlier versions: converted once, not re-decoded
        z = _load_npz(legacy)
        if z is not None and str(z.get("key")) == self.key and {"off", "data"} <= set(z):
            off = z["off"]
            write_cache(self.base, (z["data"][off[i]:off[i + 1]] for i in range(len(off) - 1)), self.key, off)
        else:
            write_cache(self.base, _decoded(self.paths, workers, verbose, self.edges), self.key)
        if not self._open():
            raise RuntimeError(f"the audio cache {self.base}.int16 could not be read back")

    def _open(self) -> bool:
        z = _load_npz(self.base + ".index.npz")
        raw = self.base + ".int16"
        if z is None or str(z.get("key")) != self.key or "off" not in z or not os.path.exists(raw):
            return False
        off = z["off"]
        if len(off) != len(self.paths) + 1 or os.path.getsize(raw) != 2 * int(off[-1]):
            return False
        self._off = off
        self._data = (np.memmap(raw, dtype=np.int16, mode="r", shape=(int(off[-1]),)) if off[-1]
                      else np.zeros(0, np.int16))
        return True

    def __getstate__(self):
        # a loader worker started by spawn re-opens the map instead of receiving a copy of every sample
        state = dict(self.__dict__)
        if self.base is not None:
            del state["_data"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.base is not None and not self._open():
            raise RuntimeError(f"the audio cache {self.base}.int16 changed while in use")

    def __len__(self) -> int:
        return len(self._off) - 1

    def length(self, i: int) -> int:
        return int(self._off[i + 1] - self._off[i])

    def get(self, i: int, max_samples: Optional[int] = None) -> np.ndarray:
        """float32 wave in [-1, 1]; only its first ``max_samples`` are read and converted."""
        return int16_to_float(self.get_int16(i)[:max_samples])

    def get_int16(self, i: int) -> np.ndarray:
        return self._data[self._off[i]:self._off[i + 1]]


def _load_npz(path: str):
    """The arrays of an .npz file, or None when it is missing or unreadable (then the cache is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


# --------------------------------------------------------------------------------------------
# crops / tiling / collate
# --------------------------------------------------------------------------------------------
def tile_to(x: np.ndarray, n: int) -> np.ndarray:
    """Repeat (tile) ``x`` until it has ``n`` samples (NeMo repeats short signals instead of zero-padding)."""
    if len(x) >= n:
        return x[:n]
    if len(x) == 0:
        return np.zeros(n, dtype=x.dtype)
    reps = -(-n // len(x))
    return np.tile(x, reps)[:n]


def random_crop(x: np.ndarray, n: int, rng: np.random.RandomState) -> np.ndarray:
    """A random ``n``-sample window of ``x``; shorter signals are tiled to ``n``."""
    return _crop(x, n, rng)[0]


def _crop(x: np.ndarray, n: int, rng: np.random.RandomState) -> Tuple[np.ndarray, float]:
    """``random_crop`` and the centre of the window in ``x``'s samples (a tiled signal's own centre)."""
    if len(x) <= n:
        return tile_to(x, n), len(x) / 2
    start = rng.randint(0, len(x) - n + 1)
    return x[start:start + n], start + n / 2


def collate_waves(batch: Sequence[Tuple[torch.Tensor, int]]):
    """(wave, label) items -> (wave (B, N), lengths (B,), labels (B,)); shorter waves are tiled to the longest."""
    n = max(int(w.shape[0]) for w, _ in batch)
    waves = torch.stack([torch.from_numpy(tile_to(w.numpy(), n)) if w.shape[0] < n else w[:n]
                         for w, _ in batch])
    lengths = torch.full((len(batch),), n, dtype=torch.int64)
    labels = torch.tensor([int(l) for _, l in batch], dtype=torch.int64)
    return waves, lengths, labels


class CropBatchSampler(torch.utils.data.Sampler):
    """Yields lists of ``(index, crop_samples)``: one random crop length in [min_sec, max_sec] per batch
    (all items of a batch share it, so no padding is needed).

    An epoch visits every file ``ceil(duration / max_sec)`` times (capped at ``max_visits``), so a 14 s
    LibriSpeech clip contributes several different crops while a 1 s keyword contributes one.
    With ``num_replicas > 1`` (DDP) every rank gets a disjoint, equally long share of the epoch.
    """

    def __init__(self, durations: Sequence[float], batch_size: int, min_sec: float = 2.0,
                 max_sec: float = 3.0, seed: int = 0, max_visits: int = 4, num_replicas: int = 1,
                 rank: int = 0, drop_last: bool = True):
        self.durations = list(durations)
        self.batch_size = batch_size
        self.min_sec, self.max_sec = min_sec, max_sec
        self.seed = seed
        self.max_visits = max_visits
        self.num_replicas, self.rank = num_replicas, rank
        self.drop_last = drop_last
        self.epoch = 0
        vis = [min(max_visits, max(1, int(np.ceil(d / max_sec - 0.25)))) for d in self.durations]
        self.items = np.repeat(np.arange(len(self.durations)), vis)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _num_batches_total(self) -> int:
        n = len(self.items) // self.batch_size
        return n if self.drop_last else -(-len(self.items) // self.batch_size)

    def __len__(self) -> int:
        return self._num_batches_total() // self.num_replicas

    def __iter__(self):
        rng = np.random.RandomState((self.seed * 1000003 + self.epoch) % (2 ** 31))
        order = self.items[rng.permutation(len(self.items))]
        nb = len(self)
        total = nb * self.num_replicas
        lens = rng.uniform(self.min_sec, self.max_sec, size=total)
        for b in range(nb):
            gb = b * self.num_replicas + self.rank
            idx = order[gb * self.batch_size:(gb + 1) * self.batch_size]
            if len(idx) == 0:
                continue
            n = int(round(lens[gb] * SAMPLE_RATE))
            yield [(int(i), n) for i in idx]


def speaker_classes(labels: Sequence[str], speaker_speeds: Sequence[float] = ()) -> List[str]:
    """The classifier's classes: the speakers, then one copy of them per speed of speaker augmentation.

    >>> speaker_classes(["a", "b"], (0.9,))
    ['a', 'b', 'a@speed0.9', 'b@speed0.9']
    """
    return list(labels) + [f"{l}@speed{float(f):g}" for f in speaker_speeds for l in labels]


class TrainDataset(torch.utils.data.Dataset):
    """Random crops from the cached waves. ``__getitem__((index, crop_samples))`` -> (wave, label_id, index,
    centre), where ``centre`` is where the crop sits in the file (samples), for per-window distillation targets.

    ``augment`` is an optional callable ``(wave_tensor, rng) -> wave_tensor`` (see speaker_core.augment).

    Speaker augmentation: with probability ``p_speaker_speed`` a crop is played at one of ``speaker_speeds``
    (pitch, formants and tempo together) and labelled as a new speaker, ``label_id + (k + 1) * len(labels)``
    for the k-th speed, so the classifier has ``len(labels) * (1 + len(speaker_speeds))`` classes
    (``class_labels``).

    Source noise: with probability ``p_source_noise`` a crop gets noise (``source_noise(n, rng)``, unit RMS) at a
    ratio drawn from ``source_snr`` dB below the power of its samples that came from the recording, and only on
    those: not on the ``pad_samples`` of canonical padding at each end of an edged clip. That is a noisy recording
    as the app embeds it (``audio.canonical_edges`` pads it with the same quiet noise as a clean one), which the
    augmentation chain's noise over the whole crop never shows (rule 52).
    """

    def __init__(self, rows: Sequence[dict], cache: AudioCache, labels: Optional[List[str]] = None,
                 seed: int = 0, augment=None, default_crop_sec: float = 3.0,
                 speaker_speeds: Sequence[float] = (), p_speaker_speed: float = 0.0,
                 source_noise: Optional[Callable] = None, p_source_noise: float = 0.0,
                 source_snr: Sequence[float] = (5.0, 30.0), pad_samples: int = 0):
        if not 0.0 <= p_source_noise <= 1.0 or (p_source_noise and source_noise is None):
            raise ValueError(f"p_source_noise must be in [0, 1] and needs a noise source, not {p_source_noise}")
        self.source_noise, self.p_source_noise = source_noise, float(p_source_noise)
        self.source_snr, self.pad_samples = tuple(float(v) for v in source_snr), int(pad_samples)
        self.speaker_speeds = tuple(float(f) for f in speaker_speeds)
        self.p_speaker_speed = float(p_speaker_speed) if self.speaker_speeds else 0.0
        # a copy at speed 1.0 (or two copies at one speed) would be the same voice under two labels
        if any(not 0.5 <= f <= 2.0 or round(f * 100) == 100 for f in self.speaker_speeds) \
                or len({round(f * 100) for f in self.speaker_speeds}) < len(self.speaker_speeds):
            raise ValueError(f"speaker_speeds must be distinct factors in [0.5, 2] other than 1.0, not {speaker_speeds}")
        if not 0.0 <= self.p_speaker_speed <= 1.0:
            raise ValueError(f"p_speaker_speed must be in [0, 1], not {p_speaker_speed}")
        self.rows = list(rows)
        self.cache = cache
        self.labels = labels if labels is not None else sorted({r["label"] for r in self.rows})
        self.label_to_id = {l: i for i, l in enumerate(self.labels)}
        self.targets = [self.label_to_id[r["label"]] for r in self.rows]
        self.seed = seed
        self.augment = augment
        self.default_crop = int(default_crop_sec * SAMPLE_RATE)
        self._rng = np.random.RandomState(seed)

    @property
    def class_labels(self) -> List[str]:
        return speaker_classes(self.labels, self.speaker_speeds)

    def reseed(self, seed: int) -> None:
        self._rng = np.random.RandomState(seed % (2 ** 31))

    def __len__(self) -> int:
        return len(self.rows)

    def noisy_source(self, w: torch.Tensor, clip_len: int, centre: float) -> torch.Tensor:
        """``w`` (a crop centred at ``centre`` of a ``clip_len``-sample clip) with source noise on the samples
        that are not canonical padding."""
        m, p = w.shape[0], self.pad_samples
        if clip_len <= m:   # a short clip tiled to the crop: its pattern of padding repeats
            inner = np.zeros(clip_len, np.float32)
            inner[p:max(p, clip_len - p)] = 1.0
            mask = tile_to(inner, m)
        else:               # the crop's window of the clip, without building the whole clip's mask
            s = int(round(centre - m / 2))
            mask = np.zeros(m, np.float32)
            mask[max(0, p - s):max(0, min(m, clip_len - p - s))] = 1.0
        mask = torch.from_numpy(np.ascontiguousarray(mask))
        if float(mask.sum()) < 160:   # under 10 ms of the recording in this crop
            return w
        power = w[mask > 0].pow(2).mean()
        snr = self._rng.uniform(*self.source_snr)
        noise = self.source_noise(m, self._rng)
        return w + mask * noise * torch.sqrt(power / 10.0 ** (snr / 10.0))

    def __getitem__(self, item):
        if isinstance(item, tuple):
            i, n = item
        else:
            i, n = int(item), self.default_crop
        y = self.targets[i]
        k = -1
        if self.p_speaker_speed and self._rng.rand() < self.p_speaker_speed:
            k = self._rng.randint(len(self.speaker_speeds))
        f = self.speaker_speeds[k] if k >= 0 else 1.0
        # crop before converting: clips can be long; a sped-up copy needs n * f source samples to fill n
        clip = self.cache.get_int16(i)
        x, centre = _crop(clip, int(round(n * f)), self._rng)
        w = torch.from_numpy(int16_to_float(x))
        if self.p_source_noise and self._rng.rand() < self.p_source_noise:
            w = self.noisy_source(w, clip.size, centre)
        if k >= 0:
            w = fit_length(resample_speed(w, f), n, self._rng)
            y += (k + 1) * len(self.labels)
        if self.augment is not None:
            w = self.augment(w, self._rng)
        return w, y, i, centre


def collate_train(batch):
    """(wave, label, index, centre) items -> (wave (B, N), lengths (B,), labels (B,), indices (B,), centres (B,))."""
    waves, lengths, labels = collate_waves([(w, l) for w, l, _, _ in batch])
    idx = torch.tensor([i for _, _, i, _ in batch], dtype=torch.int64)
    centres = torch.tensor([c for _, _, _, c in batch], dtype=torch.float64)
    return waves, lengths, labels, idx, centres


if __name__ == "__main__":
    sys.exit(main_prepare())
