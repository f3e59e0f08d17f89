"""Command line: `python -m speaker_core {embed,verify,prepare,train,evaluate,calibrate,fuse} ...`."""
from __future__ import annotations

import argparse
import json
import sys


def cmd_embed(argv) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core embed", description="Embed audio files into an (N, D) .npy array.")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", default=None, help="shipped name or path to a .pt/.nemo checkpoint")
    ap.add_argument("--out", default="embeddings.npy")
    ap.add_argument("--raw", action="store_true", help="do not L2-normalise (NeMo get_embedding values)")
    ap.add_argument("--device", default=None)
    a = ap.parse_args(argv)
    import numpy as np

    from .api import load_model

    model = load_model(a.model, device=a.device)
    embs = model.embed_batch(a.files, normalize=not a.raw)
    np.save(a.out, embs)
    print(f"wrote {embs.shape[0]} x {embs.shape[1]} embeddings to {a.out} ({model.name})")
    return 0


def cmd_verify(argv) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core verify", description="Are two clips the same speaker?")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threshold", type=float, default=None, help="threshold on the checkpoint's score scale (default: its calibrated one)")
    ap.add_argument("--device", default=None)
    a = ap.parse_args(argv)
    from .api import load_model

    model = load_model(a.model, device=a.device)
    r = model.verify(a.a, a.b, threshold=a.threshold)
    print(json.dumps({"score": round(r.score, 4), "same_speaker": r.same_speaker, "threshold": round(r.threshold, 4),
                      "scale": model.scale, "model": model.name}))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"embed": cmd_embed, "verify": cmd_verify}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands | {"prepare": 0, "train": 0, "evaluate": 0, "calibrate": 0, "fuse": 0}:
        print("usage: python -m speaker_core {embed,verify,prepare,train,evaluate,calibrate,fuse} ...", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    cmd, rest = argv[0], argv[1:]
    from .audio import AudioError
    from .checkpoint import CheckpointError

    try:
        if cmd == "prepare":
            from .data import main_prepare as fn
        elif cmd == "train":
            from .train import main_train as fn
        elif cmd == "evaluate":
            from .evaluate import main_evaluate as fn
        elif cmd == "calibrate":
            from .evaluate import main_calibrate as fn
        elif cmd == "fuse":
            from .fusion import main_fuse as fn
        else:
            fn = commands[cmd]
        return int(fn(rest) or 0)
    except (AudioError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:  # a manifest, config or trials path
        print(f"error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
