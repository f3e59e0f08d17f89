"""Average the weights of checkpoints that share one architecture (a "model soup").

Useful for fine-tuning runs that started from the same checkpoint: their weights stay in one basin, so the mean
is a model too. BatchNorm running statistics are averaged like any other tensor; integer counters come from the
first input. The output has no calibration: run `python -m speaker_core calibrate` on it.

    python tools/average_checkpoints.py OUT.pt A.pt B.pt [C.pt ...] [--name ecapa-small]

`--name` sets the output's model name; without it the first input's name is kept (a run's name, such as
"ecapa-small-g51", when the inputs are runs).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from speaker_core.model import config_to_dict  # noqa: E402

# Measured numbers and calibration belong to one model; the average must be measured again.
STALE_META = ("calibration", "score_norm", "embedding", "dev_eer", "source", "created")


def _label(path, model) -> str:
    label = "/".join(Path(path).parts[-2:])
    inner = model.meta.get("averaged_from")
    if isinstance(inner, list) and inner:
        label += f" (itself a uniform average of {len(inner)}: {', '.join(str(x) for x in inner)})"
    return label


def average(paths, name=None):
    models = [load_checkpoint(p) for p in paths]
    first = config_to_dict(models[0].config)
    for p, m in zip(paths[1:], models[1:]):
        if config_to_dict(m.config) != first:
            raise SystemExit(f"{p} has a different architecture from {paths[0]}")
    states = [m.state_dict() for m in models]
    avg = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            avg[k] = torch.stack([s[k].float() for s in states]).mean(0)
        else:
            avg[k] = v.clone()
    out = models[0]
    out.load_state_dict(avg)
    meta = {k: v for k, v in out.meta.items() if k not in STALE_META}
    # "run/file": enough to tell runs/kd/export.pt from runs/bat/export.pt, without a home directory in the file.
    # An ingredient that is itself an average says so, or "checkpoints/ecapa-small.pt" would name nothing later.
    meta["averaged_from"] = [_label(p, m) for p, m in zip(paths, models)]
    meta["created"] = time.strftime("%Y-%m-%d %H:%M:%S")
    if name:
        meta["name"] = name
    out.meta = meta
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--name", help="model name of the average (default: the first input's)")
    try:
        a = ap.parse_intermixed_args(argv)
    except SystemExit as e:   # usage errors return 2, as the rest of main does
        return int(e.code or 0)
    if len(a.inputs) < 2 or a.name == "":
        ap.print_usage(sys.stderr)
        return 2
    model = average(a.inputs, a.name)
    save_checkpoint(a.out, model, labels=[], half=True, drop_head=True)
    print(f"wrote {a.out}: mean of {len(a.inputs)} checkpoints")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
