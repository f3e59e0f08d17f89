"""Median / p90 latency of the app's public /identify endpoint, measured with gradio_client.

Starts nothing itself: run the app first (`python app.py`), then

    python benchmarks/identify_latency.py [--url http://127.0.0.1:7860/] [--n 20]

It enrolls 4 bundled reference speakers (assets/reference, 2 clips each) under a "bench " prefix, times /identify
on a third clip of the first one (upload, decoding, embedding, scoring and the top-k bars, as a user sees them),
and deletes those speakers again.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from pathlib import Path

from gradio_client import Client, handle_file

REF = Path(__file__).resolve().parent.parent / "assets" / "reference"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860/")
    ap.add_argument("--n", type=int, default=20, help="timed requests (after 2 warm-up requests)")
    args = ap.parse_args()
    c = Client(args.url, verbose=False)
    clips = defaultdict(list)
    for p in sorted(REF.iterdir()):
        clips[p.stem.rsplit("_", 1)[0]].append(p)
    names = sorted(clips)[:4]
    try:
        for n in names:
            c.predict(f"bench {n}", [handle_file(str(p)) for p in clips[n][:2]], None, False, api_name="/enroll")
        query = handle_file(str(clips[names[0]][2]))
        for _ in range(2):
            c.predict(query, api_name="/identify")
        times = []
        for _ in range(args.n):
            t0 = time.perf_counter()
            result = c.predict(query, api_name="/identify")[0]
            times.append(time.perf_counter() - t0)
    finally:
        for n in names:
            try:
                c.predict(f"bench {n}", api_name="/delete_speaker")
            except Exception:
                pass
    ms = sorted(1000 * t for t in times)
    print(f"/identify over {args.n} requests (gallery of {len(names)}): median {statistics.median(ms):.0f} ms, "
          f"p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms (answer {result['speaker']!r}, expected 'bench {names[0]}')")


if __name__ == "__main__":
    main()
