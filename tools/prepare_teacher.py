"""Precompute teacher embeddings, one per manifest row (clean): resemblyzer's by default, or one of our checkpoints'.

    python tools/prepare_teacher.py --manifest data/train.jsonl --out data/teacher.npy [--cache data/cache_train]
    python tools/prepare_teacher.py --checkpoint runs/soup9.pt --out data/teacher_ecapa_soup9.npy --cache data/cache_train
    python tools/prepare_teacher.py --crops 2.5:0.5 --out data/teacher_crops.npz --cache data/cache_train [--workers 2]
    python tools/prepare_teacher.py --crops 2.5:0.5 --edges canonical --out data/teacher_crops_edges.npz \
        --cache data/cache_train_edges --workers 2      # for a run with data.edges=canonical

Resemblyzer (whole utterance) is dev-only (see speaker_core/teacher.py). ``--crops WIN:HOP`` embeds windows of WIN
seconds every HOP seconds of each file instead (a file no longer than WIN is one window), for per-crop distillation
targets; give it ``--cache`` so that its worker processes share one decoded copy of the audio. The table records
that cache's key (files and ``--edges``), and training refuses a table made from other audio than its own cache. A checkpoint teacher
embeds the first 6 s of each file the way the checkpoint embeds (its windows), unit length: how the session-7
SpeakerNet-M got its teacher.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from speaker_core.data import AudioCache, read_manifest  # noqa: E402
from speaker_core.train import edges_setting  # noqa: E402
from speaker_core.teacher import (compute_teacher_embeddings, resemblyzer_encoder,  # noqa: E402
                                  teacher_embed_many, window_starts)


def _embed_windows(args):
    """Worker: the teacher's embedding of every window of the given files -> (file index, (count, 256)) pairs."""
    manifest, cache_path, win, hop, files, edges = args
    torch.set_num_threads(1)
    rows = read_manifest(manifest)
    cache = AudioCache([r["audio_filepath"] for r in rows], cache_path=cache_path, edges=edges)
    enc = resemblyzer_encoder("cpu")
    out = []
    for i in files:
        w = cache.get(i)
        out.append((i, teacher_embed_many(enc, [w[s:s + win] for s in window_starts(len(w), win, hop)])))
    return out


def crop_table(manifest, cache_path, n_files, win, hop, workers, edges=None):
    """Teacher embeddings of every window of every file, in ``workers`` processes: (emb (M, 256), count (N,))."""
    import multiprocessing as mp
    from tqdm import tqdm
    chunks = [list(range(a, min(a + 50, n_files))) for a in range(0, n_files, 50)]
    got = {}
    with mp.get_context("spawn").Pool(workers) as pool:
        jobs = pool.imap_unordered(_embed_windows, [(manifest, cache_path, win, hop, c, edges) for c in chunks])
        for part in tqdm(jobs, total=len(chunks), desc="teacher windows", mininterval=30):
            got.update(part)
    count = np.array([len(got[i]) for i in range(n_files)], dtype=np.int64)
    return np.concatenate([got[i] for i in range(n_files)]).astype(np.float32), count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--manifest", default="data/train.jsonl")
    ap.add_argument("--out", default="data/teacher.npy")
    ap.add_argument("--cache", default=None, help="optional AudioCache path (data/cache_train: reuses the training cache)")
    ap.add_argument("--checkpoint", default=None, help="our .pt checkpoint as the teacher instead of resemblyzer")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--crops", default=None, metavar="WIN:HOP",
                    help="seconds: one resemblyzer embedding per window (writes an .npz table)")
    ap.add_argument("--workers", type=int, default=1, help="processes for --crops")
    ap.add_argument("--edges", choices=("none", "canonical"), default="none",
                    help="embed the clips as a run with data.edges=canonical crops them (audio.CANONICAL_EDGES)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = read_manifest(a.manifest)
    edges = edges_setting(None if a.edges == "none" else a.edges)   # exactly what the run's data.edges resolves to
    cache = AudioCache([r["audio_filepath"] for r in rows], cache_path=a.cache, verbose=True, edges=edges)
    if a.crops:
        win, hop = (int(round(float(x) * 16000)) for x in a.crops.split(":"))
        if not a.out.endswith(".npz") or hop <= 0 or win <= 0:
            ap.error("--crops needs WIN:HOP > 0 and an --out ending in .npz")
        emb, count = crop_table(a.manifest, a.cache, len(rows), win, hop, a.workers, edges)
        np.savez(a.out, emb=emb, count=count, hop=hop, win=win, cache_key=cache.key)
        print(f"wrote {a.out}: {emb.shape} for {len(count)} files (windows of {win} samples every {hop})")
        return
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
