"""Checkpoints: our own `.pt` format and import of NeMo `.nemo` archives. No pickled code ever runs.

Our format is a `torch.save` dict of plain data, loaded with `torch.load(weights_only=True)`:
    {"format": "speaker_core/1", "config": {...}, "state_dict": {name: tensor}, "labels": [...], "meta": {...}}
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import torch

from .model import ModelConfig, SpeakerModel, config_from_dict, config_to_dict

FORMAT = "speaker_core/1"
FUSION_FORMAT = "speaker_core/fusion-1"   # speaker_core/fusion.py: several of our checkpoints as one model
MAX_CHECKPOINT_BYTES = 2 * 1024**3


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, of the wrong kind or unsafe."""


def save_checkpoint(path, model: SpeakerModel, labels=None, meta: dict | None = None,
                    half: bool = False, drop_head: bool = False) -> None:
    """Write `model` with its config, labels and metadata. `half` stores fp16; `drop_head` drops the classifier."""
    cfg = model.config
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    cfg_dict = config_to_dict(cfg)
    if drop_head:
        state = {k: v for k, v in state.items() if not k.startswith("decoder.final.")}
        cfg_dict["decoder"]["num_classes"] = 0
    if half:
        # The mel filterbank and window stay fp32: they define the features, not learned weights.
        state = {k: (v.half() if v.is_floating_point() and not k.startswith("features.") else v) for k, v in state.items()}
    labels = list(model.labels if labels is None else labels)
    payload = {
        "format": FORMAT,
        "config": cfg_dict,
        "state_dict": state,
        "labels": [] if drop_head else [str(x) for x in labels],
        "meta": dict(model.meta if meta is None else meta),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write never leaves a truncated checkpoint behind


def build_model(cfg: ModelConfig, state: dict, labels=(), meta=None) -> SpeakerModel:
    try:
        model = SpeakerModel(cfg)
    except Exception as e:
        raise CheckpointError(f"Invalid model config in checkpoint: {e}") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    if cfg.decoder.num_classes == 0:
        state = {k: v for k, v in state.items() if not k.startswith("decoder.final.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:   # a tensor of the wrong shape: name the first one, not a torch traceback
        detail = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e).splitlines()[0])
        raise CheckpointError(f"Checkpoint weights do not fit its config: {detail[:300]}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"Checkpoint weights do not match its config: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    model.labels = [str(x) for x in labels]
    model.meta = dict(meta or {})
    return model.eval()


def _checked_path(path) -> Path:
    p = Path(os.fspath(path))
    if not p.is_file():
        raise CheckpointError(f"Checkpoint not found: {p}")
    if p.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"Checkpoint {p.name} is larger than {MAX_CHECKPOINT_BYTES // 2**30} GB.")
    return p


def load_checkpoint(path, device=None) -> SpeakerModel:
    """Load a `.pt` (ours) or `.nemo` (NeMo) checkpoint into a SpeakerModel in eval mode."""
    p = _checked_path(path)
    if p.suffix == ".nemo":
        from .nemo import load_nemo

        model = load_nemo(p)
    else:
        model = model_from_payload(read_payload(p), p.name)
    if device is not None:
        model = model.to(device)
    return model


def _load_failure(e: Exception) -> str:
    """torch.load's reasons in a line a user can act on (its own messages run to a paragraph about weights_only)."""
    msg = str(e) or type(e).__name__
    hit = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", msg)
    if hit:
        return (f"it holds pickled Python objects ({hit.group(1)}), not only tensors and plain containers. "
                "It was refused without running them.")
    if "Unsupported operand" in msg or "invalid load key" in msg:
        return "it is not a PyTorch checkpoint file."
    if "corrupted" in msg or "zip archive" in msg or isinstance(e, EOFError):
        return "the file is truncated or corrupt."
    return msg.splitlines()[0][:200]


def read_payload(path) -> dict:
    """The plain dict inside one of our `.pt` files (a model, or a fusion of models), loaded without running code."""
    p = _checked_path(path)
    data = p.read_bytes()
    if not data:
        raise CheckpointError(f"{p.name} is empty (0 bytes).")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{p.name} is not a readable speaker_core checkpoint: {_load_failure(e)}") from None
    if not isinstance(payload, dict) or payload.get("format") not in (FORMAT, FUSION_FORMAT):
        raise CheckpointError(f"{p.name} is not a speaker_core checkpoint (no '{FORMAT}' format tag).")
    return payload


def model_from_payload(payload: dict, name: str) -> SpeakerModel:
    if payload.get("format") == FUSION_FORMAT:
        raise CheckpointError(f"{name} is a fusion of checkpoints, not one network: load it with "
                              "speaker_core.load_model.")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{name} has no valid state_dict.")
    try:
        cfg = config_from_dict(payload["config"])
    except KeyError as e:
        raise CheckpointError(f"{name} has an invalid config: {e.args[0]!r} is missing") from None
    except Exception as e:
        raise CheckpointError(f"{name} has an invalid config: {e}") from None
    labels = payload.get("labels") or []
    meta = payload.get("meta") or {}
    if not isinstance(labels, list) or not isinstance(meta, dict):
        raise CheckpointError(f"{name} has malformed labels or metadata.")
    model = build_model(cfg, state, labels, meta)
    model.meta.setdefault("source", name)
    return model
