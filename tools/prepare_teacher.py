"""Precompute teacher embeddings, one per manifest row (clean): resemblyzer's by default, or one of our checkpoints'.

    python tools/prepare_teacher.py --manifest data/train.jsonl --out data/teacher.npy [--cache data/cache_train]
    python tools/prepare_teacher.py --checkpoint runs/soup9.pt --out data/teacher_ecapa_soup9.npy --cache data/cache_train

Resemblyzer (whole utterance) is dev-only (see speaker_core/teacher.py). A checkpoint teacher embeds the first 6 s of
each file the way the checkpoint embeds (its windows), unit length: how the session-7 SpeakerNet-M got its teacher.
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
    ap.add_argument("--checkpoint", default=None, help="our .pt checkpoint as the teacher instead of resemblyzer")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = read_manifest(a.manifest)
    cache = AudioCache([r["audio_filepath"] for r in rows], cache_path=a.cache)
    if a.checkpoint:
        from speaker_core.api import edges_of, window_of
        from speaker_core.checkpoint import load_checkpoint
        from speaker_core.evaluate import SR, embed_waves
        from speaker_core.scoring import l2_normalize
        model = load_checkpoint(a.checkpoint).float().eval()
        with torch.no_grad():
            emb = embed_waves(model, [cache.get(i, 6 * SR) for i in range(len(rows))], window=window_of(model.meta),
                              edges=edges_of(model.meta))
        emb = l2_normalize(emb).astype(np.float32)
    else:
        emb = compute_teacher_embeddings((cache.get(i) for i in range(len(rows))), resemblyzer_encoder("cpu"),
                                         progress=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)) or ".", exist_ok=True)
    np.save(a.out, emb)
    print(f"wrote {a.out}: {emb.shape}")


if __name__ == "__main__":
    main()
