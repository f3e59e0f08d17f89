"""Embedding speed: speaker_core vs NeMo on the same .nemo weights, same clip, same threads.

    /opt/nemo-venv/bin/python benchmarks/bench_embed.py /work/nemo_full --seconds 10 --threads 2

Runs in an environment that has NeMo (dev only); without NeMo it times speaker_core alone. Prints the median
wall time of one whole-file embedding (file read included for both) and of a batch of 8 clips.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import speaker_core as sc  # noqa: E402


def timeit(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root", help="folder with <name>.nemo files")
    ap.add_argument("--models", default="speakernet-m,speakernet-l,ecapa-tdnn,titanet-s,titanet-l")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        from nemo.collections.asr.models import EncDecSpeakerLabelModel
        from nemo.utils import logging as nemo_logging
        nemo_logging.setLevel("ERROR")   # restore_from prints each model's whole train config otherwise
    except Exception:
        EncDecSpeakerLabelModel = None
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp())
    clip = tmp / "clip.wav"
    t = np.arange(int(a.seconds * 16000)) / 16000
    sf.write(clip, (0.1 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(7 * t)) + rng.normal(0, 0.02, t.size)).astype(np.float32), 16000)
    clips = []
    for i in range(8):
        p = tmp / f"b{i}.wav"
        n = int((2 + i) * 16000)
        sf.write(p, rng.normal(0, 0.1, n).astype(np.float32), 16000)
        clips.append(p)
    print(f"device={a.device} threads={a.threads} clip={a.seconds:.0f}s batch=8 clips of 2-9 s; median of {a.reps}")
    print(f"{'model':13s} {'ours 1 clip':>12s} {'nemo 1 clip':>12s} {'speed-up':>9s} {'ours batch8':>12s} {'nemo batch8':>12s}")
    for name in a.models.split(","):
        path = Path(a.root) / f"{name}.nemo"
        ours = sc.load_model(path, device=a.device)
        t_ours = timeit(lambda: ours.embed_file(clip, normalize=False), a.reps)
        tb_ours = timeit(lambda: ours.embed_batch(clips, normalize=False), max(2, a.reps // 2))
        t_nemo = tb_nemo = float("nan")
        if EncDecSpeakerLabelModel is not None:
            nemo = EncDecSpeakerLabelModel.restore_from(str(path), map_location=a.device).eval()
            t_nemo = timeit(lambda: nemo.get_embedding(str(clip)), a.reps)
            tb_nemo = timeit(lambda: [nemo.get_embedding(str(c)) for c in clips], max(2, a.reps // 2))
        print(f"{name:13s} {t_ours * 1e3:10.1f}ms {t_nemo * 1e3:10.1f}ms {t_nemo / t_ours:8.2f}x "
              f"{tb_ours * 1e3:10.1f}ms {tb_nemo * 1e3:10.1f}ms")


if __name__ == "__main__":
    main()
