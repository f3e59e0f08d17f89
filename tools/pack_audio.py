"""Carry a training set to a machine that cannot see ../shared: pack it small, unpack it into the audio cache.

The train pool is 3.3 h of 16 kHz audio (376 MB as int16). A lent GPU machine takes at most 64 MiB of working
tree, so the waves travel as Opus (about 30 kb/s, 43 MB), concatenated in a few chunks that decode in parallel.
Unpacking writes ``<data>/<stem>.jsonl`` and ``<data>/cache_<stem>.int16`` (+ ``.index.npz``) exactly as
``speaker_core.data.AudioCache`` would have built them from the original files, so ``python -m speaker_core train``
runs unchanged.

    python tools/pack_audio.py pack data/train.jsonl .pack          # here (needs the data cache or the audio)
    python tools/pack_audio.py unpack .pack data                     # there (needs soundfile)
    python tools/pack_audio.py slim runs/x/last.pt out/x.pt          # model-only copy of a run's last.pt (fp16)

Opus is lossy: the model trains on slightly coded audio (one more channel variation), while dev and every
evaluation stay on the original files.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SR = 16000


def pack(manifest: str, out: str, chunks: int = 8, level: float = 0.9) -> None:
    import soundfile as sf
    from speaker_core.data import AudioCache, read_manifest
    rows = read_manifest(manifest)
    stem = os.path.splitext(os.path.basename(manifest))[0]
    cache = AudioCache([r["audio_filepath"] for r in rows],
                       cache_path=os.path.join(os.path.dirname(manifest), f"cache_{stem}"))
    off = cache._off
    # chunk boundaries on clip boundaries, about equal in samples
    targets = np.linspace(0, off[-1], chunks + 1)
    bounds = sorted({int(np.searchsorted(off, t)) for t in targets[1:-1]} | {0, len(rows)})
    os.makedirs(out, exist_ok=True)
    for c, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        sf.write(os.path.join(out, f"audio_{c:02d}.ogg"), cache._data[off[a]:off[b]], SR,
                 format="OGG", subtype="OPUS", compression_level=level)
    np.savez(os.path.join(out, "index.npz"), off=off, bounds=np.array(bounds), key=np.array(cache.key),
             stem=np.array(stem))
    shutil.copy(manifest, os.path.join(out, f"{stem}.jsonl"))
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"packed {len(rows)} clips, {off[-1] / SR / 3600:.2f} h into {len(bounds) - 1} chunks: {size / 2**20:.1f} MiB")


def _decode(path: str) -> np.ndarray:
    import soundfile as sf
    x, sr = sf.read(path, dtype="int16")
    assert sr == SR, (path, sr)
    return x


def unpack(src: str, data: str) -> None:
    z = np.load(os.path.join(src, "index.npz"))
    off, bounds, key, stem = z["off"], z["bounds"], str(z["key"]), str(z["stem"])
    files = [os.path.join(src, f"audio_{c:02d}.ogg") for c in range(len(bounds) - 1)]
    with ProcessPoolExecutor(min(len(files), os.cpu_count() or 1)) as ex:
        parts = list(ex.map(_decode, files))
    for (a, b), x in zip(zip(bounds[:-1], bounds[1:]), parts):
        if len(x) != off[b] - off[a]:
            raise SystemExit(f"chunk {a}-{b}: decoded {len(x)} samples, expected {off[b] - off[a]}")
    from speaker_core.data import write_cache
    write_cache(os.path.join(data, f"cache_{stem}"), parts, key, off)
    shutil.copy(os.path.join(src, f"{stem}.jsonl"), os.path.join(data, f"{stem}.jsonl"))
    print(f"unpacked {len(off) - 1} clips, {off[-1] / SR / 3600:.2f} h into {data}/cache_{stem}.int16")


def slim(last: str, dst: str) -> None:
    """Keep what ``train --export-from last`` reads (model weights, epoch, history, config), weights in fp16."""
    import torch
    st = torch.load(last, map_location="cpu", weights_only=False)
    w = {k: (v.half() if v.is_floating_point() else v) for k, v in st["wrapper"].items() if k.startswith("model.")}
    torch.save({"wrapper": w, "epoch": st["epoch"], "history": st["history"], "config": st["config"]}, dst)
    print(f"wrote {dst} ({os.path.getsize(dst) / 2**20:.1f} MiB, epoch {st['epoch'] + 1})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("manifest")
    p.add_argument("out")
    p.add_argument("--chunks", type=int, default=8)
    p.add_argument("--level", type=float, default=0.9, help="libsndfile compression level (0.9: about 30 kb/s)")
    u = sub.add_parser("unpack")
    u.add_argument("src")
    u.add_argument("data")
    s = sub.add_parser("slim")
    s.add_argument("last")
    s.add_argument("dst")
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        pack(a.manifest, a.out, a.chunks, a.level)
    elif a.cmd == "unpack":
        unpack(a.src, a.data)
    else:
        slim(a.last, a.dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
