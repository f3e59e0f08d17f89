"""Training: ``python -m speaker_core train CONFIG.yaml [--resume] [--set key=value ...]``.

Recipe (see configs/*.yaml): additive-angular-margin softmax (s=30, m=0.2, margin ramped in over the first
epochs), AdamW, linear warmup + cosine decay per step, grad-norm clip 1.0, bf16/fp16 autocast on CUDA,
waveform augmentation (speaker_core.augment) plus the model's own dither/SpecAugment, optional resemblyzer
distillation as an auxiliary loss (speaker_core.teacher). Every epoch rank 0 measures the dev EER (whole-file
embeddings, trials within each corpus; per corpus and pooled), keeps ``best.pt`` by pooled dev EER and
``last.pt`` (model, optimizer, scheduler, epoch, RNG states) for ``--resume``, and exports the best model
(fp16, no classifier head, recipe/data/dev-EER/calibration metadata) to ``export`` (default
``<out>/export.pt``) when it improves.

Optimizer: AdamW rather than NeMo's SGD. NeMo's SGD recipes run 200-250 epochs on thousands of speakers;
here we have ~20 CPU epochs, and AdamW's per-parameter step sizes converge much faster in a short schedule
and are far less sensitive to the learning rate we cannot afford to tune.

Runs unchanged under ``torchrun --nproc_per_node=N`` (DDP; gloo on CPU, nccl on CUDA; each rank gets a
disjoint share of every epoch from CropBatchSampler, the distributed analogue of DistributedSampler; only rank 0
logs, validates and saves).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
import time
from collections import Counter
from typing import Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import yaml

from .audio import CANONICAL_EDGES
from .augment import Augmenter, BatchAugmenter, quiet_pad, resample_speed
from .data import (AudioCache, CropBatchSampler, TrainDataset, collate_train, read_manifest, speaker_classes,
                   summarize)
from .evaluate import (build_trials, calibration_from_scores, embed_waves, evaluate_embeddings, format_results,
                       split_single_items)

DEFAULTS = {
    "name": "run",
    "seed": 0,
    "threads": 2,
    "out": "runs/run",
    "export": None,
    "init": None,
    "init_head": "prototypes",   # with init: "prototypes" (mean training embedding per speaker) or "random"
    "model": {"preset": "speakernet-m", "decoder": {}, "spec_augment": True},
    "data": {"train": "data/train.jsonl", "dev": "data/dev.jsonl", "cache_dir": "data",
             "crop_min": 2.0, "crop_max": 3.0, "max_visits": 4, "num_workers": 0, "edges": None,
             # rule 52: noise in the recording only, not on the canonical padding (data.TrainDataset)
             "p_source_noise": 0.0, "source_snr": [5.0, 30.0]},
    "augment": {"enabled": True},
    "teacher": {"path": None, "weight": 0.0},
    # silence consistency: a share of each batch is embedded again between quiet edges (augment.quiet_pad of
    # `pad` seconds each side), and the padded embedding is pulled to the crop's own (held fixed). mode "eval"
    # embeds both as inference does (BatchNorm running statistics, no SpecAugment, no dropout); "train" embeds the
    # padded copies in training mode, as session 9's GPU runs did
    "consistency": {"weight": 0.0, "fraction": 0.5, "pad": [0.25, 2.0], "edge_db": [-75.0, -40.0], "p_zeros": 0.2,
                    "mode": "eval"},
    # topk / topk_margin: the inter-top-k penalty (decoder.AngularMarginLoss), ramped in with the margin
    "loss": {"scale": 30.0, "margin": 0.2, "margin_warmup_epochs": 2, "topk": 0, "topk_margin": 0.0},
    "optim": {"name": "adamw", "lr": 2e-3, "weight_decay": 1e-3, "momentum": 0.9, "betas": [0.9, 0.999],
              "warmup_ratio": 0.05, "min_lr_ratio": 0.01, "grad_clip": 1.0},
    "epochs": 20,
    "batch_size": 32,
    "max_steps_per_epoch": None,
    "max_minutes": None,
    "stop_after_epochs": None,
    "save_every": 1,
    "val": {"every": 1, "max_nontarget": 20000, "split_single": 4.0, "crop_eval": 2.0, "batch_size": 16},
}


def deep_update(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in (b or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: Optional[str], overrides: Sequence[str] = ()) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        with open(path) as f:
            cfg = deep_update(cfg, yaml.safe_load(f) or {})
    for ov in overrides:
        k, v = ov.split("=", 1)
        d = cfg
        keys = k.split(".")
        for kk in keys[:-1]:
            d = d.setdefault(kk, {})
        d[keys[-1]] = yaml.safe_load(v)
    return cfg


# --------------------------------------------------------------------------------------------
# distributed helpers
# --------------------------------------------------------------------------------------------
def dist_setup():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def is_main(rank: int) -> bool:
    return rank == 0


def export_path(cfg: dict) -> str:
    """Where the model-only copy goes: ``export=`` or ``<out>/export.pt``. Never a shipped file by default:
    a run once overwrote checkpoints/ecapa-small.pt that way. Shipping is an explicit copy after calibrate."""
    return cfg.get("export") or os.path.join(cfg["out"], "export.pt")


def edges_setting(value) -> Optional[dict]:
    """``data.edges``: None (clips as recorded), "canonical" (``audio.CANONICAL_EDGES``, as ``calibrate --edges
    canonical`` embeds) or a dict of ``audio.canonical_edges`` keyword arguments.

    >>> edges_setting("canonical")["detector"], edges_setting(None)
    ('words', None)
    """
    if not value:
        return None
    if value == "canonical":
        return dict(CANONICAL_EDGES)
    if isinstance(value, dict) and set(value) <= {"keep", "pad", "db", "detector"}:
        return dict(value)
    raise ValueError(f"data.edges must be null, 'canonical' or a dict of keep/pad/db/detector, not {value!r}")


def open_cache(rows, cache_dir: Optional[str], manifest: str, rank: int = 0, world: int = 1,
               edges: Optional[dict] = None) -> AudioCache:
    """The audio cache of a manifest (``<cache_dir>/cache_<manifest stem>.int16``, ``..._edges`` with ``edges``).
    Under torchrun rank 0 decodes it while the other ranks wait, then they all map the same file."""
    stem = os.path.splitext(os.path.basename(manifest))[0] + ("_edges" if edges else "")
    path = os.path.join(cache_dir, f"cache_{stem}") if cache_dir else None
    if world > 1 and rank != 0:
        dist.barrier()
    cache = AudioCache([r["audio_filepath"] for r in rows], cache_path=path, verbose=is_main(rank), edges=edges)
    if world > 1 and rank == 0:
        dist.barrier()
    return cache


def _seed_worker(worker_id: int) -> None:
    # every loader worker starts with a copy of the dataset's RNG; without this they would all draw the
    # same crop offsets and augmentations. torch gives each worker base_seed + id, itself seeded.
    info = torch.utils.data.get_worker_info()
    info.dataset.reseed(info.seed)


# --------------------------------------------------------------------------------------------
# model pieces
# --------------------------------------------------------------------------------------------
def build_model(cfg: dict, num_classes: int):
    from .model import SpeakerModel, preset
    mc = cfg["model"]
    mcfg = preset(mc["preset"], num_classes=num_classes, **(mc.get("decoder") or {}))
    if not mc.get("spec_augment", True):
        mcfg.spec_augment = None
    # size overrides (used for tiny test models): Jasper channels / epilog, ECAPA filter list
    if mc.get("filters") and hasattr(mcfg.encoder, "blocks"):
        import dataclasses
        blocks = [dataclasses.replace(b, filters=int(mc["filters"])) for b in mcfg.encoder.blocks[:-1]]
        last = mcfg.encoder.blocks[-1]
        blocks.append(dataclasses.replace(last, filters=int(mc.get("epilog") or last.filters)))
        mcfg.encoder.blocks = blocks
        mcfg.decoder.feat_in = blocks[-1].filters
    if mc.get("dropout") is not None and hasattr(mcfg.encoder, "blocks"):
        import dataclasses
        mcfg.encoder.blocks = [dataclasses.replace(b, dropout=float(mc["dropout"]) if b.dropout > 0 else 0.0)
                               for b in mcfg.encoder.blocks]
    if mc.get("ecapa_filters") and hasattr(mcfg.encoder, "filters"):
        mcfg.encoder.filters = [int(x) for x in mc["ecapa_filters"]]
        mcfg.decoder.feat_in = mcfg.encoder.filters[-1]
    return SpeakerModel(mcfg)


def init_from(model, path: str) -> int:
    """Warm start: copy every tensor of a saved checkpoint whose name and shape match, except the classifier.

    The shipped checkpoints have no head, so a warm restart re-learns only the final layer (with the margin
    ramped in again) while the encoder, pooling and embedding layers continue from where they were.
    """
    from .checkpoint import load_checkpoint
    src = load_checkpoint(path).state_dict()
    own = model.state_dict()
    keep = {k: v.to(own[k].dtype) for k, v in src.items()
            if k in own and own[k].shape == v.shape and not k.startswith("decoder.final")}
    model.load_state_dict(keep, strict=False)
    return len(keep)


@torch.no_grad()
def head_from_prototypes(model, cache: AudioCache, rows, labels, device, max_seconds: float = 6.0,
                         chunk: int = 256, per_speaker: int = 16, speaker_speeds: Sequence[float] = ()) -> None:
    """Point each classifier row at its speaker's mean training embedding (unit length).

    A warm restart with a random head sends large, meaningless gradients through the pretrained encoder until
    the head has caught up; starting the head at the speaker prototypes skips that (as in linear-probe-then-
    fine-tune), and does not depend on the seed. With ``speaker_speeds`` (speaker augmentation, see
    ``TrainDataset``) the rows of the k-th speed's speakers point at the same clips played at that speed.
    """
    dec = model.decoder
    index = {lab: i for i, lab in enumerate(labels)}
    # the first `per_speaker` clips of each speaker: a mean needs few, and VoxCeleb2 has 1M clips
    counts: Counter = Counter()
    use = []
    for i, r in enumerate(rows):
        if counts[r["label"]] < per_speaker:
            counts[r["label"]] += 1
            use.append(i)
    y = torch.tensor([index[rows[i]["label"]] for i in use])
    was_training = model.training
    model.eval()
    speeds = (1.0,) + tuple(float(f) for f in speaker_speeds)
    sums = torch.zeros(len(labels) * len(speeds), dec.emb_dim)
    n = int(max_seconds * 16000)
    for k, f in enumerate(speeds):
        for start in range(0, len(use), chunk):
            waves = [cache.get(i, max_samples=n) for i in use[start:start + chunk]]
            if f != 1.0:
                waves = [resample_speed(torch.from_numpy(x), f).numpy() for x in waves]
            emb = torch.from_numpy(embed_waves(model, waves, device=device)).float()     # (b, D)
            h = F.normalize(dec.classifier_input(emb), dim=1)
            sums.index_add_(0, y[start:start + len(waves)] + k * len(labels), h)
    w = F.normalize(sums, dim=1)
    dec.final.weight.copy_(w.to(dec.final.weight))
    if dec.final.bias is not None:
        dec.final.bias.zero_()
    model.train(was_training)


class TrainWrapper(nn.Module):
    """One forward for DDP: embedding, angular logits, (optionally) the distillation projection and (optionally)
    the embedding of padded copies of the first K crops with its reference, the embedding of those K crops (the
    consistency loss; one DDP forward for all).

    With ``consistency_mode="eval"`` both come from the model in inference mode. In training mode each half-batch
    is normalised by its own BatchNorm statistics and the padded batches also move the running statistics; session
    9's GPU runs learned that way, and the inference-time cosine between a crop and its padded copy rose only from
    0.78 to 0.82 while the training-mode one rose from 0.66 to 0.77."""

    def __init__(self, model, distill=None, consistency_mode: str = "eval"):
        super().__init__()
        if consistency_mode not in ("eval", "train"):
            raise ValueError(f"consistency.mode must be 'eval' or 'train', not {consistency_mode!r}")
        self.model = model
        self.distill = distill
        self.consistency_mode = consistency_mode

    def forward(self, wave, lengths, wave2=None, lengths2=None):
        emb = self.model(wave, lengths)
        logits = self.model.logits(emb)
        proj = self.distill.proj(emb.float()) if self.distill is not None else None
        emb2 = ref2 = None
        if wave2 is not None:
            k = wave2.shape[0]
            if self.consistency_mode == "train":
                emb2, ref2 = self.model(wave2, lengths2), emb[:k].detach()
            else:
                was = self.model.training
                self.model.eval()
                try:
                    emb2 = self.model(wave2, lengths2)
                    with torch.no_grad():
                        ref2 = self.model(wave[:k], lengths[:k])
                finally:
                    self.model.train(was)
        return emb, logits, proj, emb2, ref2


def consistency_loss(emb: torch.Tensor, emb_padded: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cos`` between each padded copy (K, D) and its crop (K, D). The crop's embedding is the target
    and gets no gradient: silence around the words should move the embedding to where the words alone put
    it, not pull both towards each other."""
    target = F.normalize(emb.detach().float(), dim=-1)
    return (1.0 - (F.normalize(emb_padded.float(), dim=-1) * target).sum(-1)).mean()


class WarmupCosine:
    """Linear warmup then cosine decay to ``min_ratio * lr``, driven by training progress in [0, 1].

    Progress is ``step / total_steps`` or, when a wall-clock budget is given, the larger of that and
    ``elapsed / budget``: on a shared CPU box the step rate is unpredictable, and a time budget
    guarantees the schedule actually reaches its low-lr end before the run has to stop.
    """

    def __init__(self, opt, total_steps: int, warmup_ratio: float = 0.05, min_ratio: float = 0.0,
                 budget_seconds: Optional[float] = None):
        self.opt = opt
        self.base = [g["lr"] for g in opt.param_groups]
        self.total, self.warm, self.min_ratio = max(1, total_steps), warmup_ratio, min_ratio
        self.budget = budget_seconds
        self.step_count = 0
        self.elapsed = 0.0
        self._t = time.time()
        self.apply()

    def progress(self) -> float:
        p = self.step_count / self.total
        if self.budget:
            p = max(p, self.elapsed / self.budget)
        return min(1.0, p)

    def factor(self) -> float:
        p = self.progress()
        if self.warm > 0 and p < self.warm:
            return max(p / self.warm, 1.0 / self.total)
        q = (p - self.warm) / max(1e-9, 1.0 - self.warm)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, q)))

    def apply(self) -> None:
        f = self.factor()
        for g, b in zip(self.opt.param_groups, self.base):
            g["lr"] = b * f

    def step(self) -> None:
        now = time.time()
        self.elapsed += now - self._t
        self._t = now
        self.step_count += 1
        self.apply()

    def done(self) -> bool:
        return self.progress() >= 1.0

    def get_last_lr(self):
        return [g["lr"] for g in self.opt.param_groups]

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "elapsed": self.elapsed, "base": self.base, "total": self.total}

    def load_state_dict(self, d: dict) -> None:
        self.step_count, self.elapsed = d["step_count"], d["elapsed"]
        self._t = time.time()
        self.apply()

    def sync(self, elapsed: float) -> None:
        """Use an externally agreed elapsed time (rank 0's) so that all DDP ranks follow one schedule."""
        self.elapsed = elapsed


def make_optimizer(params, oc: dict):
    name = oc.get("name", "adamw").lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=oc["lr"], momentum=oc.get("momentum", 0.9),
                               weight_decay=oc.get("weight_decay", 0.0), nesterov=False)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=oc["lr"], betas=tuple(oc.get("betas", (0.9, 0.999))),
                                 weight_decay=oc.get("weight_decay", 0.0))
    raise ValueError(f"unknown optimizer {name}")


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def load_run_state(path: str) -> dict:
    """A run's ``last.pt`` without executing pickled code: tensors, plain containers and, as the only extra
    types allowed, the arrays of numpy's RNG state."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:   # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    with torch.serialization.safe_globals([_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]):
        return torch.load(path, map_location="cpu", weights_only=True)


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
class DevSet:
    """Dev utterances (whole files; single-file speakers split into halves) and within-corpus trials."""

    def __init__(self, rows, cache: AudioCache, split_single: float = 4.0, max_nontarget: int = 20000,
                 seed: int = 0):
        items = [{"path": r["audio_filepath"], "speaker": r["label"], "set": r.get("corpus", "default"), "row": i}
                 for i, r in enumerate(rows)]
        durs = [cache.length(i) / 16000 for i in range(len(rows))]
        if split_single and split_single > 0:
            items, durs = split_single_items(items, durs, split_single)
        self.items = items
        self.waves = []
        for it in items:
            w = cache.get(it["row"])
            if "segment" in it:
                a, b = it["segment"]
                w = w[int(a * 16000):int(b * 16000)]
            self.waves.append(w)
        self.trials = build_trials(items, max_nontarget=max_nontarget, seed=seed)

    def run(self, model, device, batch_size=16, crop: Optional[float] = None):
        waves = self.waves if not crop else [w[:int(crop * 16000)] for w in self.waves]
        emb = embed_waves(model, waves, batch_size=batch_size, device=device)
        return evaluate_embeddings(emb, self.trials)


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
def export_model(model, path: str, meta: dict) -> None:
    from .checkpoint import save_checkpoint
    m = copy.deepcopy(model).cpu().float().eval()
    save_checkpoint(path, m, labels=[], meta=meta, half=True, drop_head=True)


def recipe_summary(cfg: dict, world: int) -> dict:
    return {"preset": cfg["model"]["preset"], "model": cfg["model"], "notes": cfg.get("notes"),
            "max_minutes": cfg.get("max_minutes"), "threads": cfg.get("threads"),
            "decoder_overrides": cfg["model"].get("decoder") or {},
            "loss": f"AAM softmax s={cfg['loss']['scale']} m={cfg['loss']['margin']}"
                    + (f" inter-top-{cfg['loss']['topk']} m'={cfg['loss']['topk_margin']}"
                       if cfg["loss"].get("topk") and cfg["loss"].get("topk_margin") else ""),
            "optimizer": cfg["optim"], "epochs": cfg["epochs"], "batch_size": cfg["batch_size"],
            "world_size": world, "crop_sec": [cfg["data"]["crop_min"], cfg["data"]["crop_max"]],
            "speaker_speeds": cfg["data"].get("speaker_speeds"), "p_speaker_speed": cfg["data"].get("p_speaker_speed"),
            "augment": cfg["augment"], "spec_augment": cfg["model"].get("spec_augment", True),
            "distillation": cfg["teacher"] if cfg["teacher"].get("weight") else None, "seed": cfg["seed"],
            "consistency": cfg.get("consistency") if (cfg.get("consistency") or {}).get("weight") else None,
            "init": cfg.get("init"), "init_head": cfg.get("init_head") if cfg.get("init") else None}


# --------------------------------------------------------------------------------------------
# main loop
# --------------------------------------------------------------------------------------------
def train(cfg: dict, resume: bool = False) -> dict:
    rank, world, local = dist_setup()
    torch.set_num_threads(int(cfg.get("threads") or 1))
    seed = int(cfg["seed"])
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed + rank)

    use_cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    out = cfg["out"]
    if is_main(rank):
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.yaml"), "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)

    dc = cfg["data"]
    train_rows = read_manifest(dc["train"])
    dev_rows = read_manifest(dc["dev"]) if dc.get("dev") else []
    cache_dir = dc.get("cache_dir")
    edges = edges_setting(dc.get("edges"))   # training crops cut from clips edged as the checkpoint will embed
    cache = open_cache(train_rows, cache_dir, dc["train"], rank, world, edges)
    labels = sorted({r["label"] for r in train_rows})

    # augmentation; babble from other training utterances
    def babble_source(rng):
        return cache.get(int(rng.randint(len(cache))))

    # augment.mode: "clip" runs the chain per crop in the loader workers, "batch" on the whole batch on the
    # training device (speaker_core.augment.BatchAugmenter; the loader then only crops)
    batch_aug = BatchAugmenter.from_config(cfg.get("augment"))
    aug = None if batch_aug else Augmenter.from_config(cfg.get("augment"), babble_source=babble_source)
    p_source = float(dc.get("p_source_noise", 0.0))
    if p_source and aug is None:
        raise ValueError("data.p_source_noise needs the per-clip augmentation (augment.mode clip, enabled)")
    ds = TrainDataset(train_rows, cache, labels=labels, seed=seed, augment=aug,
                      speaker_speeds=dc.get("speaker_speeds") or (), p_speaker_speed=dc.get("p_speaker_speed", 0.0),
                      source_noise=aug.noise if p_source else None, p_source_noise=p_source,
                      source_snr=dc.get("source_snr", (5.0, 30.0)),
                      pad_samples=int(round(edges["pad"] * 16000)) if edges else 0)
    sampler = CropBatchSampler([cache.length(i) / 16000 for i in range(len(cache))], cfg["batch_size"],
                               dc["crop_min"], dc["crop_max"], seed=seed, max_visits=dc.get("max_visits", 4),
                               num_replicas=world, rank=rank)
    nw = int(dc.get("num_workers", 0))
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate_train, num_workers=nw,
                                         worker_init_fn=_seed_worker, persistent_workers=nw > 0,
                                         prefetch_factor=4 if nw else None, pin_memory=use_cuda)
    steps_per_epoch = len(sampler)
    if cfg.get("max_steps_per_epoch"):
        steps_per_epoch = min(steps_per_epoch, int(cfg["max_steps_per_epoch"]))
    total_steps = steps_per_epoch * int(cfg["epochs"])

    class_labels = ds.class_labels     # the speakers, then their sped-up copies (speaker augmentation)
    model = build_model(cfg, len(class_labels)).to(device)
    model.labels = class_labels
    if cfg.get("init") and not (resume and os.path.exists(os.path.join(out, "last.pt"))):
        n = init_from(model, cfg["init"])
        # DDP copies rank 0's parameters to the other ranks when it wraps the model
        if cfg.get("init_head", "prototypes") not in ("prototypes", "random"):
            raise ValueError(f"init_head must be 'prototypes' or 'random', not {cfg['init_head']!r}")
        prototypes = cfg.get("init_head", "prototypes") == "prototypes"
        if prototypes and is_main(rank):
            t0 = time.time()
            head_from_prototypes(model, cache, train_rows, labels, device, speaker_speeds=ds.speaker_speeds)
        if is_main(rank):
            how = f"speaker prototypes ({time.time() - t0:.0f}s)" if prototypes else "random"
            print(f"initialised {n} tensors from {cfg['init']}; classifier head: {how}", flush=True)
    tc = cfg.get("teacher") or {}
    teacher = None
    distill = None
    if tc.get("weight") and tc.get("path"):
        from .teacher import DistillHead, load_teacher
        teacher = load_teacher(tc["path"], n_rows=len(train_rows), cache_key=cache.key, edged=bool(edges)).to(device)
        distill = DistillHead(model.emb_dim, teacher.dim).to(device)
    cc = cfg.get("consistency") or {}
    cw = float(cc.get("weight") or 0.0)
    wrapper = TrainWrapper(model, distill, cc.get("mode", "eval")).to(device)
    if world > 1:
        ddp = nn.parallel.DistributedDataParallel(wrapper, device_ids=[local] if use_cuda else None)
    else:
        ddp = wrapper

    oc = cfg["optim"]
    decay, no_decay = [], []
    for n, p in wrapper.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = make_optimizer([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], oc)
    budget = float(cfg["max_minutes"]) * 60.0 if cfg.get("max_minutes") else None
    sched = WarmupCosine(opt, total_steps, oc.get("warmup_ratio", 0.05), oc.get("min_lr_ratio", 0.0), budget)
    from .decoder import AngularMarginLoss
    lc = cfg["loss"]
    loss_fn = AngularMarginLoss(scale=lc["scale"], margin=lc["margin"], topk=lc.get("topk", 0),
                                topk_margin=lc.get("topk_margin", 0.0))

    amp_dtype = None
    scaler = None
    if use_cuda:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if amp_dtype == torch.float16:
            scaler = torch.amp.GradScaler("cuda")

    start_epoch, best_eer, history = 0, float("inf"), []
    last_path, best_path = os.path.join(out, "last.pt"), os.path.join(out, "best.pt")
    if resume and os.path.exists(last_path):
        st = load_run_state(last_path)
        wrapper.load_state_dict(st["wrapper"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        if scaler is not None and st.get("scaler"):
            scaler.load_state_dict(st["scaler"])
        start_epoch = st["epoch"] + 1
        best_eer = st.get("best_eer", float("inf"))
        history = st.get("history", [])
        rs = st.get("rng", {}).get(rank) or st.get("rng", {}).get(0)
        if rs:
            set_rng_state(rs)
        if is_main(rank):
            print(f"resumed from {last_path} at epoch {start_epoch}", flush=True)

    dev = None
    if is_main(rank) and dev_rows:
        vc = cfg["val"]
        dcache = open_cache(dev_rows, cache_dir, dc["dev"], edges=edges)   # rank 0 alone
        dev = DevSet(dev_rows, dcache, vc.get("split_single", 4.0), vc.get("max_nontarget", 20000), seed)

    data_summary = {"train": summarize(train_rows), "dev": summarize(dev_rows),
                    "dev_speakers": sorted({r["label"] for r in dev_rows}),
                    "split": "speaker-disjoint per corpus, speaker_core.data.split_speakers"}
    if is_main(rank):
        n_params = sum(p.numel() for p in model.parameters())
        print(f"[{cfg['name']}] {len(train_rows)} train files, {len(labels)} speakers ({len(class_labels)} classes); "
              f"{steps_per_epoch} steps/epoch x "
              f"{cfg['epochs']} epochs, batch {cfg['batch_size']} x {world} rank(s); model {n_params / 1e6:.2f}M params; "
              f"device {device}; threads {torch.get_num_threads()}; distill {'on' if distill else 'off'}; "
              f"silence consistency {cw:g}", flush=True)

    t_start = time.time()
    step = start_epoch * steps_per_epoch
    stop = False
    for epoch in range(start_epoch, int(cfg["epochs"])):
        ddp.train()
        sampler.set_epoch(epoch)
        epoch_seed = seed * 100003 + epoch * 1009 + rank
        ds.reseed(epoch_seed)
        aug_gen = torch.Generator(device=device).manual_seed(epoch_seed) if batch_aug else None
        pad_gen = torch.Generator(device=device).manual_seed(epoch_seed + 7) if cw else None
        mw = lc.get("margin_warmup_epochs", 0) or 0
        tot_loss = tot_acc = tot_n = tot_dist = tot_cons = 0.0
        t_ep = time.time()
        bar = None
        if is_main(rank):
            from tqdm import tqdm
            bar = tqdm(total=steps_per_epoch, desc=f"ep {epoch}", mininterval=float(cfg.get("tqdm_interval", 30)),
                       file=sys.stdout, dynamic_ncols=False, ncols=110)
        n_steps = 0
        for it, (wave, lengths, y, idx, centres) in enumerate(loader):
            if it >= steps_per_epoch:
                break
            n_steps += 1
            if mw:
                ramp = min(1.0, (epoch + it / steps_per_epoch) / mw)
                loss_fn.margin, loss_fn.topk_margin = lc["margin"] * ramp, lc.get("topk_margin", 0.0) * ramp
            wave, lengths, y = wave.to(device, non_blocking=True), lengths.to(device), y.to(device)
            if batch_aug is not None:
                with torch.no_grad():
                    wave = batch_aug(wave, aug_gen)
            wave2 = lengths2 = None
            if cw:
                k = max(1, int(round(len(y) * float(cc.get("fraction", 0.5)))))
                lo, hi = cc.get("pad", [0.25, 2.0])
                lead, tail = (int(16000 * (lo + (hi - lo) * float(torch.rand(1, generator=pad_gen, device=device))))
                              for _ in range(2))
                with torch.no_grad():
                    wave2 = quiet_pad(wave[:k], lead, tail, pad_gen, cc.get("edge_db", [-75.0, -40.0]),
                                      float(cc.get("p_zeros", 0.2)))                       # (k, lead + N + tail)
                lengths2 = lengths[:k] + lead + tail
            with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=amp_dtype is not None):
                emb, logits, proj, emb2, ref2 = ddp(wave, lengths, wave2, lengths2)
            loss_cls = loss_fn(logits.float(), y)
            loss = loss_cls
            if proj is not None:
                t = teacher.lookup(idx, centres)                                    # (B, Dt)
                p = torch.nn.functional.normalize(proj.float(), dim=-1)
                # the teacher embedded each file at its own speed: a sped-up copy is another speaker
                real = (y < len(labels)).float()
                ld = ((1.0 - (p * t).sum(-1)) * real).sum() / real.sum().clamp_min(1.0)
                loss = loss + float(tc["weight"]) * ld
                tot_dist = tot_dist + ld.detach() * len(y)       # on the device, like the sums below
            if emb2 is not None:
                lc2 = consistency_loss(ref2, emb2)
                loss = loss + cw * lc2
                tot_cons = tot_cons + lc2.detach() * len(y)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(wrapper.parameters(), oc.get("grad_clip", 1.0))
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                nn.utils.clip_grad_norm_(wrapper.parameters(), oc.get("grad_clip", 1.0))
                opt.step()
            sched.step()
            step += 1
            with torch.no_grad():
                # running sums stay on the device: a .item() per step would stall the GPU queue
                tot_loss = tot_loss + loss_cls.detach() * len(y)
                tot_acc = tot_acc + (logits.argmax(1) == y).float().sum()
            tot_n += len(y)
            if bar is not None:
                if it % 20 == 0:
                    post = {"loss": f"{float(tot_loss) / tot_n:.3f}", "acc": f"{float(tot_acc) / tot_n:.3f}",
                            "lr": f"{sched.get_last_lr()[0]:.2e}"}
                    if distill is not None:
                        post["kd"] = f"{float(tot_dist) / tot_n:.3f}"
                    if cw:
                        post["cons"] = f"{float(tot_cons) / tot_n:.3f}"
                    bar.set_postfix(post, refresh=False)
                bar.update(1)
            if world > 1 and budget:
                el = torch.tensor([sched.elapsed], dtype=torch.float64)
                if rank != 0:
                    el.zero_()
                if use_cuda:
                    el = el.to(device)
                dist.broadcast(el, 0)
                sched.sync(float(el.item()))
                sched.apply()
            if sched.done():
                stop = True
                break
        if bar is not None:
            bar.close()
        ep_time = time.time() - t_ep
        tot_loss, tot_acc, tot_dist, tot_cons = float(tot_loss), float(tot_acc), float(tot_dist), float(tot_cons)
        rec = {"epoch": epoch, "train_loss": tot_loss / max(tot_n, 1), "train_acc": tot_acc / max(tot_n, 1),
               "kd_loss": tot_dist / max(tot_n, 1) if distill is not None else None,
               "consistency_loss": tot_cons / max(tot_n, 1) if cw else None,
               "lr": sched.get_last_lr()[0], "epoch_seconds": round(ep_time, 1),
               "sec_per_step": round(ep_time / max(n_steps, 1), 3), "steps": n_steps}
        if is_main(rank):
            if dev is not None and ((epoch + 1) % int(cfg["val"].get("every", 1)) == 0 or stop
                                    or epoch + 1 == int(cfg["epochs"])):
                tv = time.time()
                res, scores = dev.run(model, device, cfg["val"].get("batch_size", 16))
                rec["dev"] = {"pooled_eer": res["pooled"]["eer"], "mean_set_eer": res["mean_set_eer"],
                              "per_corpus": {k: v["eer"] for k, v in res["sets"].items()},
                              "min_dcf": res["pooled"].get("min_dcf_p0.01")}
                if cfg["val"].get("crop_eval"):
                    res2, _ = dev.run(model, device, cfg["val"].get("batch_size", 16), crop=cfg["val"]["crop_eval"])
                    rec["dev"][f"pooled_eer_crop{cfg['val']['crop_eval']:g}"] = res2["pooled"]["eer"]
                    rec["dev"][f"per_corpus_crop{cfg['val']['crop_eval']:g}"] = {k: v["eer"] for k, v in res2["sets"].items()}
                rec["val_seconds"] = round(time.time() - tv, 1)
                print(format_results(res), flush=True)
                eer = res["pooled"]["eer"]
                # model selection: the mean of the per-corpus EERs (pooled scores mix corpora whose score
                # offsets differ, so the pooled EER moves with cross-corpus calibration, not discrimination)
                sel = res["mean_set_eer"] if cfg["val"].get("select", "mean") == "mean" else eer
                rec["dev"]["selection_eer"] = sel
                if sel is not None and sel < best_eer:
                    best_eer = sel
                    pt, pn = scores["pooled"]
                    calib = calibration_from_scores(pt, pn, res["pooled"]["eer_threshold"], eer / 100.0)
                    meta = {"name": cfg["name"], "recipe": recipe_summary(cfg, world), "data": data_summary,
                            "dev_eer": {"pooled": eer, "per_corpus": rec["dev"]["per_corpus"],
                                        "mean_over_corpora": res["mean_set_eer"],
                                        "pooled_crop": rec["dev"].get(f"pooled_eer_crop{cfg['val'].get('crop_eval', 0):g}"),
                                        "min_dcf_p0.01": res["pooled"].get("min_dcf_p0.01"),
                                        "trials": "within each corpus; single-file speakers split into halves",
                                        "epoch": epoch},
                            "calibration": calib, "trained_epochs": epoch + 1,
                            "created": time.strftime("%Y-%m-%d %H:%M:%S")}
                    from .checkpoint import save_checkpoint
                    save_checkpoint(best_path, model, labels=class_labels, meta=meta)
                    export_model(model, export_path(cfg), meta)
                    rec["best"] = True
            history.append(rec)
            print("EPOCH " + json.dumps(rec), flush=True)
        save_now = stop or epoch + 1 == int(cfg["epochs"]) or (epoch + 1) % int(cfg.get("save_every") or 1) == 0
        if is_main(rank) and save_now:
            tmp = last_path + ".tmp"
            torch.save({"wrapper": wrapper.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                        "epoch": epoch, "best_eer": best_eer, "history": history, "config": cfg,
                        "rng": {0: rng_state()}}, tmp)
            os.replace(tmp, last_path)
            with open(os.path.join(out, "history.json"), "w") as f:
                json.dump(history, f, indent=1)
        if world > 1:
            flag = torch.tensor([1 if stop else 0], device=device)
            dist.all_reduce(flag)
            stop = bool(flag.item())
            dist.barrier()
        if cfg.get("stop_after_epochs") and epoch + 1 >= int(cfg["stop_after_epochs"]):
            stop = True  # pause here (the schedule still targets `epochs`); continue with --resume
        if stop:
            break
    if is_main(rank):
        print(f"done in {(time.time() - t_start) / 60:.1f} min; best dev selection EER ({cfg['val'].get('select', 'mean')}) {best_eer:.2f}%", flush=True)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return {"best_eer": best_eer, "history": history, "model": model}


def export_from_run(cfg: dict, which: str = "last", out_path: Optional[str] = None) -> dict:
    """Re-measure the dev EER of ``<out>/last.pt`` (or ``best.pt``) and export it (fp16, no head) with the
    recipe / data / dev-EER / calibration metadata. Returns the metadata."""
    from .checkpoint import load_checkpoint
    torch.set_num_threads(int(cfg.get("threads") or 1))
    dc = cfg["data"]
    train_rows = read_manifest(dc["train"])
    dev_rows = read_manifest(dc["dev"])
    labels = sorted({r["label"] for r in train_rows})
    if which == "best":
        model = load_checkpoint(os.path.join(cfg["out"], "best.pt"))
        epochs_done = model.meta.get("trained_epochs")
    else:
        st = load_run_state(os.path.join(cfg["out"], "last.pt"))
        model = build_model(cfg, len(speaker_classes(labels, dc.get("speaker_speeds") or ())))
        wstate = {k[len("model."):]: v for k, v in st["wrapper"].items() if k.startswith("model.")}
        model.load_state_dict(wstate)
        epochs_done = st["epoch"] + 1
    model.eval()
    dcache = open_cache(dev_rows, dc.get("cache_dir"), dc["dev"], edges=edges_setting(dc.get("edges")))
    vc = cfg["val"]
    dev = DevSet(dev_rows, dcache, vc.get("split_single", 4.0), vc.get("max_nontarget", 20000), cfg["seed"])
    res, scores = dev.run(model, torch.device("cpu"), vc.get("batch_size", 16))
    crop = vc.get("crop_eval")
    res2 = dev.run(model, torch.device("cpu"), vc.get("batch_size", 16), crop=crop)[0] if crop else None
    print(format_results(res), flush=True)
    pt, pn = scores["pooled"]
    world = int(cfg.get("world_size_used", 1))
    meta = {"name": cfg["name"], "recipe": recipe_summary(cfg, world),
            "data": {"train": summarize(train_rows), "dev": summarize(dev_rows),
                     "dev_speakers": sorted({r["label"] for r in dev_rows}),
                     "split": "speaker-disjoint per corpus, speaker_core.data.split_speakers (dev_fraction 0.1, seed 0)"},
            "dev_eer": {"pooled": res["pooled"]["eer"], "per_corpus": {k: v["eer"] for k, v in res["sets"].items()},
                        "mean_over_corpora": res["mean_set_eer"],
                        "pooled_crop": res2["pooled"]["eer"] if res2 else None,
                        "per_corpus_crop": {k: v["eer"] for k, v in res2["sets"].items()} if res2 else None,
                        "crop_seconds": crop,
                        "min_dcf_p0.01": res["pooled"].get("min_dcf_p0.01"),
                        "trials": "within each corpus; single-file speakers split into halves"},
            "calibration": calibration_from_scores(pt, pn, res["pooled"]["eer_threshold"], res["pooled"]["eer"] / 100.0),
            "trained_epochs": epochs_done, "exported_from": which,
            "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    dst = out_path or export_path(cfg)
    export_model(model, dst, meta)
    print(f"exported {dst} ({os.path.getsize(dst) / 1e6:.2f} MB) from {which}", flush=True)
    return meta


def main_train(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="YAML config (configs/speakernet-m.yaml)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override config entries, e.g. --set epochs=2 optim.lr=1e-3")
    ap.add_argument("--export-from", choices=["best", "last"], default=None,
                    help="only re-measure the dev EER of <out>/best.pt or last.pt, export it and exit")
    a = ap.parse_args(argv)
    cfg = load_config(a.config, a.set)
    if a.export_from:
        src = os.path.join(cfg["out"], f"{a.export_from}.pt")
        if not os.path.isfile(src):
            print(f"error: {src} does not exist: train first (same --set out=...), then export", file=sys.stderr)
            return 2
        export_from_run(cfg, a.export_from)
        return 0
    train(cfg, resume=a.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main_train())
