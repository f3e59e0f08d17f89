"""Rules 47 and 48: how often a one-voice check (``agreement`` below the threshold) would warn (both failed).

    python tools/voice_check.py checkpoints/ecapa-speakernet-fusion.pt data/dev.jsonl

On dev speakers' whole files (no halves): A, every file with >= 4 s of words as it is; B, a file joined end to end
with another file of the same speaker; C, with a file of another speaker of the same corpus (both sides with
>= 2 s of words; up to 200 ordered pairs each, drawn without replacement, seed 0). Prints the warned fraction of
each with a 95 % Wilson interval, per corpus, and for C by the shorter side's seconds of words.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core import load_model  # noqa: E402
from speaker_core.audio import SAMPLE_RATE, speech_seconds  # noqa: E402
from speaker_core.evaluate import items_from_manifest, load_item_waves  # noqa: E402
from speaker_core.scoring import l2_normalize  # noqa: E402

PARTS_FROM = 4.0   # rule 45: clips with this many seconds of words are cut into parts
JOIN_SIDE = 2.0    # each side of a join holds at least this many seconds of words
N_JOINS = 200


def agreement(model, parts) -> float | None:
    """How well a clip's parts (k, D) agree, on the checkpoint's scale: the lowest score of a part against the
    normalised mean of the other parts, as ``compare_many`` scores a clip against a voiceprint (rule 47); None for
    fewer than 2 parts."""
    p = l2_normalize(np.atleast_2d(np.asarray(parts, dtype=np.float64)))              # (k, D)
    if p.shape[0] < 2:
        return None
    others = l2_normalize(p.sum(0, keepdims=True) - p)                                # (k, D): the rest, each
    return float(min(model.compare_many(p[i], others[i:i + 1])[0] for i in range(p.shape[0])))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of k successes in n, in %."""
    if n == 0:
        return float("nan"), float("nan")
    p, d = k / n, 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return 100 * max(0.0, c - h), 100 * min(1.0, c + h)


def line(label: str, warned) -> str:
    w = np.asarray(warned, bool)
    lo, hi = wilson(int(w.sum()), w.size)
    return f"  {label:34s} warned {int(w.sum()):3d} / {w.size:3d} = {100 * w.mean() if w.size else float('nan'):5.1f} % " \
           f"(95 % {lo:.1f}-{hi:.1f})"


def draw(pairs: list, n: int, seed: int = 0) -> list:
    if len(pairs) <= n:
        return pairs
    pick = np.random.default_rng(seed).choice(len(pairs), n, replace=False)
    return [pairs[i] for i in sorted(pick)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("dev")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cut", choices=("time", "words"), default=None,
                    help="cut the parts this way (audio.word_parts) instead of as the checkpoint does")
    a = ap.parse_args()
    model = load_model(a.checkpoint, device="cpu")
    if not model.parts:
        sys.exit(f"{a.checkpoint} does not score in parts (meta['scoring']): the check has no parts to compare.")
    model.part_cut = a.cut or model.part_cut
    thr = model.threshold
    items = items_from_manifest(a.dev)
    waves = load_item_waves(items)
    span = np.array([speech_seconds(w) for w in waves])

    def check(wave: np.ndarray) -> float | None:
        return agreement(model, model.embed_parts((wave, SAMPLE_RATE)))

    print(f"{a.checkpoint}: threshold {thr:.3f}, parts of {model.parts:g} s cut by {model.part_cut}; "
          f"{len(items)} dev files")
    single = [i for i in range(len(items)) if span[i] >= PARTS_FROM]
    ok = [i for i in range(len(items)) if span[i] >= JOIN_SIDE]
    same = [(i, j) for i in ok for j in ok if i != j and items[i]["speaker"] == items[j]["speaker"]]
    diff = [(i, j) for i in ok for j in ok if items[i]["set"] == items[j]["set"]
            and items[i]["speaker"] != items[j]["speaker"]]
    same, diff = draw(same, N_JOINS, a.seed), draw(diff, N_JOINS, a.seed)
    print(f"A: {len(single)} single-speaker files with >= {PARTS_FROM:g} s of words; B: {len(same)} same-speaker "
          f"joins; C: {len(diff)} two-speaker joins (files with >= {JOIN_SIDE:g} s of words: {len(ok)})")

    rows = {"A": [(i, check(waves[i])) for i in single],
            "B": [((i, j), check(np.concatenate([waves[i], waves[j]]))) for i, j in same],
            "C": [((i, j), check(np.concatenate([waves[i], waves[j]]))) for i, j in diff]}
    for name, want in (("A", "<= 5 %"), ("B", "<= 5 %"), ("C", ">= 80 %")):
        r = rows[name]
        warned = [s is not None and s < thr for _, s in r]
        scores = np.array([s for _, s in r if s is not None])
        print(line(f"{name} (bar {want})", warned))
        if scores.size:
            q = np.percentile(scores, [5, 25, 50, 75, 95])
            print(f"    agreement percentiles 5/25/50/75/95: {' / '.join(f'{x:.2f}' for x in q)}; "
                  f"unchecked (one part): {sum(s is None for _, s in r)}")
        by = defaultdict(list)
        for key, s in r:
            by[items[key if name == "A" else key[0]]["set"]].append(s is not None and s < thr)
        for corpus in sorted(by):
            print(line(f"  {corpus}", by[corpus]))
        if name == "C":
            shorter = np.array([min(span[i], span[j]) for (i, j), _ in r])
            for lo, hi in ((2.0, 3.0), (3.0, 5.0), (5.0, np.inf)):
                m = (shorter >= lo) & (shorter < hi)
                print(line(f"  shorter side {lo:g}-{hi:g} s of words", np.asarray(warned)[m]))


if __name__ == "__main__":
    main()
