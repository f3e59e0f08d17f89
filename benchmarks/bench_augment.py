"""Augmentation speed: the batched chain (``augment.mode: batch``) per transform, and the per-clip chain.

    python benchmarks/bench_augment.py [--device cuda] [--batch 128] [--seconds 3]

Prints the median wall time of each BatchAugmenter transform on a (batch, seconds*16 kHz) tensor, with the
probability of that transform set to 1, then of the whole default chain and of torchaudio's biquad telephone chain (used
before); and the per-clip Augmenter's time for the
same number of crops on the CPU (what the loader workers pay in ``augment.mode: clip``). Uses a synthetic
speech-like signal, so it needs no data.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core.augment import Augmenter, BatchAugmenter  # noqa: E402

OFF = dict(p_noise=0.0, p_speed=0.0, p_gain=0.0, p_telephone=0.0, p_reverb=0.0)


def median_time(fn, reps: int, sync) -> float:
    fn()
    sync()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--clip-crops", type=int, default=32, help="crops timed for the per-clip chain (scaled up)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    n = int(a.seconds * 16000)
    t = torch.arange(n) / 16000.0
    rng = torch.Generator().manual_seed(0)
    f0 = 100 + 150 * torch.rand(a.batch, 1, generator=rng)
    x = (0.2 * torch.sin(2 * np.pi * f0 * t) * (1 + torch.sin(2 * np.pi * 3 * t)) +
         0.01 * torch.randn(a.batch, n, generator=rng)).to(dev)                    # (B, N)
    g = torch.Generator(device=dev).manual_seed(0)
    print(f"BatchAugmenter on {dev}, batch {a.batch} x {a.seconds:g} s, median of {a.reps}")
    for name, p in [("speed", {"p_speed": 1.0}), ("reverb", {"p_reverb": 1.0}), ("telephone", {"p_telephone": 1.0}),
                    ("noise", {"p_noise": 1.0}), ("gain", {"p_gain": 1.0}), ("default chain", None)]:
        aug = BatchAugmenter() if p is None else BatchAugmenter(**{**OFF, **p})
        ms = 1000 * median_time(lambda: aug(x, g), a.reps, sync)
        print(f"  {name:14s} {ms:8.1f} ms/batch  {a.batch / ms * 1000:9.0f} crops/s")
    import torchaudio.functional as AF

    def biquads():   # what the batched telephone channel used before: torchaudio's biquads, a per-sample loop
        y = x
        for _ in range(2):
            y = AF.lowpass_biquad(AF.highpass_biquad(y, 16000, 300.0), 16000, 3400.0)
    ms = 1000 * median_time(biquads, a.reps, sync)
    print(f"  {'biquad chain':14s} {ms:8.1f} ms/batch  {a.batch / ms * 1000:9.0f} crops/s  (torchaudio lfilter)")
    clip = Augmenter()
    crops = [x[i].cpu() for i in range(min(a.clip_crops, a.batch))]
    state = np.random.RandomState(0)
    s = median_time(lambda: [clip(c, state) for c in crops], max(1, a.reps // 2), lambda: None)
    print(f"per-clip Augmenter on the CPU, {torch.get_num_threads()} thread(s): {1000 * s / len(crops):.1f} ms/crop, "
          f"{len(crops) / s:.0f} crops/s per process")


if __name__ == "__main__":
    main()
