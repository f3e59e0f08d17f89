"""Median / p90 latency of the app's public /verify endpoint, measured with gradio_client.

Starts nothing itself: run the app first (`python app.py`), then

    python benchmarks/verify_latency.py [--url http://127.0.0.1:7860/] [--n 20]

Each request uploads two ~4 s clips from assets/examples and waits for the result, so the
numbers include upload, queueing, decoding, both embeddings and the plot, as a user sees them.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from gradio_client import Client, handle_file

EX = Path(__file__).resolve().parent.parent / "assets" / "examples"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860/")
    ap.add_argument("--n", type=int, default=20, help="timed requests (after 2 warm-up requests)")
    ap.add_argument("--a", default=str(EX / "so0049_a.wav"))
    ap.add_argument("--b", default=str(EX / "so0049_b.wav"))
    ap.add_argument("--model", default=None, help="a checkpoint name from the app's selector (default: the app's default)")
    args = ap.parse_args()
    model = (args.model,) if args.model else ()

    client = Client(args.url, verbose=False)
    a, b = handle_file(args.a), handle_file(args.b)
    for _ in range(2):  # warm-up: model load, first plot
        client.predict(a, b, *model, api_name="/verify")
    times = []
    for _ in range(args.n):
        t = time.perf_counter()
        result = client.predict(a, b, *model, api_name="/verify")[0]
        times.append(time.perf_counter() - t)
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    print(f"/verify over {args.n} requests: median {statistics.median(times) * 1000:.0f} ms, "
          f"p90 {p90 * 1000:.0f} ms, min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms "
          f"(score {result['score']:.3f}, model {result.get('model')})")


if __name__ == "__main__":
    main()
