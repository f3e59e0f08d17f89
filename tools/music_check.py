"""Rule 49 (failed): would a warning for clips whose level does not swing like speech (``level_depth``) catch
music without warning on speech?

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
from speaker_core.audio import MAX_SECONDS, SAMPLE_RATE, AudioError, edge_silence, frame_db, load_clip  # noqa: E402
from speaker_core.data import read_manifest  # noqa: E402

def level_depth(wave: np.ndarray) -> float:
    """How far the level of 16 kHz audio rises and falls within its words, in dB: the median, over 1 s windows every
    0.5 s of the words' span, of the 90th minus the 10th percentile of its 25 ms frame levels (rule 49, failed: it
    did not tell Gradio's saxophone and band recordings from speech, and warned on 4 % of dev speech).

    >>> t = np.arange(16000 * 3) / 16000
    >>> held = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    >>> syllables = held * (0.01 + np.sin(2 * np.pi * 2.5 * t) ** 2).astype(np.float32)   # 5 per second
    >>> round(level_depth(held), 1), round(level_depth(syllables))
    (0.0, 23)
    """
    db = frame_db(wave)
    lead, tail = edge_silence(wave)
    first = int(round(lead * SAMPLE_RATE)) // 160
    last = db.size - int(round(tail * SAMPLE_RATE)) // 160
    span = db[first:last] if last - first >= 2 else db   # no words found (a steady sound): the whole clip
    starts = range(0, max(1, span.size - 100 + 1), 50)
    depths = [np.subtract(*np.percentile(span[s:s + 100], [90, 10])) for s in starts]
    return float(np.median(depths))


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
