"""Rule 49's measurement: would a warning for clips whose level does not swing like speech (``audio.level_depth``)
catch music without warning on speech?

    python tools/music_check.py data/train.jsonl data/dev.jsonl

Sets T at the 0.5th percentile of the training clips' depths (speech only), then counts the dev clips, the bundled
speech in assets/ and Gradio's sample files (two of them music) below T. Every clip is read as the app reads it
(the first 30 s).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from speaker_core.audio import MAX_SECONDS, AudioError, level_depth, load_clip  # noqa: E402
from speaker_core.data import read_manifest  # noqa: E402

MUSIC = ["sax.wav", "cantina.wav"]
SPEECH = ["cate_blanch.mp3", "cate_blanch_2.mp3", "heath_ledger.mp3", "recording1.wav"]
UNKNOWN = ["audio_sample.wav"]


def depth(path) -> float:
    """NaN for a clip the app refuses before any warning (under 0.25 s, silent)."""
    try:
        return level_depth(load_clip(path, max_seconds=MAX_SECONDS).wave)
    except AudioError:
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train")
    ap.add_argument("dev")
    a = ap.parse_args()
    train = np.array([depth(r["audio_filepath"]) for r in read_manifest(a.train)])
    print(f"train: {int(np.isnan(train).sum())} clips refused by the app as they are, left out")
    train = train[~np.isnan(train)]
    t = float(np.percentile(train, 0.5))
    print(f"train: {train.size} clips, depth percentiles 0.5/5/50/95: "
          f"{' / '.join(f'{x:.1f}' for x in np.percentile(train, [0.5, 5, 50, 95]))} dB; T = {t:.2f} dB")
    dev_rows = read_manifest(a.dev)
    dev = np.array([depth(r["audio_filepath"]) for r in dev_rows])
    print(f"dev: {int(np.isnan(dev).sum())} clips refused by the app as they are, left out")
    dev_rows = [r for r, d in zip(dev_rows, dev) if not np.isnan(d)]
    dev = dev[~np.isnan(dev)]
    low = dev < t
    print(f"1. dev: {int(low.sum())} / {dev.size} = {100 * low.mean():.2f} % warned (bar <= 1.0 %)")
    for r, d in zip(dev_rows, dev):
        if d < t:
            print(f"     {r['audio_filepath'].split('speech/')[-1]}  {d:.1f} dB")
    assets = sorted((ROOT / "assets" / "examples").glob("*.wav")) + sorted((ROOT / "assets" / "reference").glob("*.flac"))
    got = {p.name: depth(p) for p in assets}
    warned = [f"{n} {d:.1f}" for n, d in got.items() if d < t]
    print(f"2. assets: {len(warned)} / {len(got)} warned (bar: none); lowest {min(got.values()):.1f} dB {warned}")
    import gradio
    wheel = Path(os.path.dirname(gradio.__file__)) / "media_assets" / "audio"
    for label, names in (("music (bar: warned)", MUSIC), ("speech (bar: not warned)", SPEECH),
                         ("not judged", UNKNOWN)):
        for n in names:
            d = depth(wheel / n)
            print(f"3. {label:26s} {n:20s} depth {d:5.1f} dB  {'WARNED' if d < t else 'not warned'}")


if __name__ == "__main__":
    main()
