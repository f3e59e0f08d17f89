"""Precompute resemblyzer teacher embeddings, one per manifest row (whole utterance, clean).

    python tools/prepare_teacher.py --manifest data/train.jsonl --out data/teacher.npy [--cache data/cache_train]

Dev-only: needs resemblyzer (see speaker_core/teacher.py).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from speaker_core.data import AudioCache, read_manifest  # noqa: E402
from speaker_core.teacher import compute_teacher_embeddings, resemblyzer_encoder  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--manifest", default="data/train.jsonl")
    ap.add_argument("--out", default="data/teacher.npy")
    ap.add_argument("--cache", default=None, help="optional AudioCache path (data/cache_train: reuses the training cache)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = read_manifest(a.manifest)
    cache = AudioCache([r["audio_filepath"] for r in rows], cache_path=a.cache)
    enc = resemblyzer_encoder("cpu")
    emb = compute_teacher_embeddings((cache.get(i) for i in range(len(rows))), enc, progress=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)) or ".", exist_ok=True)
    np.save(a.out, emb)
    print(f"wrote {a.out}: {emb.shape}")


if __name__ == "__main__":
    main()
