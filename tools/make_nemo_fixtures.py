#!/usr/bin/env python3
"""Build NeMo parity fixtures for speaker_core (dev-only tool).

Run with the separate NeMo venv, never from the package or CI:

    /opt/nemo-venv/bin/python tools/make_nemo_fixtures.py --size tiny
    /opt/nemo-venv/bin/python tools/make_nemo_fixtures.py --size full

For each architecture (speakernet-m, speakernet-l, ecapa-tdnn, titanet-s, titanet-l) it builds NeMo's own
``EncDecSpeakerLabelModel`` from a config written here (values per docs/nemo-reference.md section 1),
randomises the BatchNorm affine parameters, calibrates the BatchNorm running statistics on real speech
(so that embeddings depend strongly on the input), saves the model with ``model.save_to`` and records NeMo's
``get_embedding`` output for a set of real clips.

Outputs (``<outdir>``: tests/fixtures/nemo for ``tiny``, /work/nemo_full for ``full``):

    <outdir>/<name>.nemo        NeMo checkpoint (uncompressed tar: model_config.yaml + model_weights.ckpt)
    <outdir>/<name>.npz         reference outputs on the fixture clips (layout: see ``reference_arrays``)
    <outdir>/clips/*.wav        the fixture clips (16 kHz, 16-bit PCM) + ATTRIBUTION.md
    /work/nemo_full/<name>_unseen.npz, /work/nemo_full/unseen_clips/*.wav   (full size only)

Paths stored in the npz ``clips`` array are relative to the directory that holds the npz.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
SPEECH = Path(os.environ.get("SPEECH_POOL", "/work/shared/data/speech"))
TINY_OUT = REPO / "tests" / "fixtures" / "nemo"
FULL_OUT = Path("/work/nemo_full")
SR = 16000
NUM_CLASSES = 50
MODELS = ["speakernet-m", "speakernet-l", "ecapa-tdnn", "titanet-s", "titanet-l"]

# --------------------------------------------------------------------------------------------------------
# Clips. Each entry: (output name, source file relative to the speech pool, start seconds, number of
# samples or None for "to the end", note). Lengths are deliberately not multiples of the 160-sample hop.
# "peak" as start means: centre the crop on the loudest 50 ms of the file.
FIXTURE_CLIPS = [
    ("c0_librispeech_196.wav", "librispeech-train-clean-100/196/196-122150-0000.flac", 0.5, 64000),
    ("c1_librispeech_5104.wav", "librispeech-train-clean-100/5104/5104-33406-0000.flac", 1.0, 52817),
    ("c2_speechocean762_0096.wav", "speechocean762/SPEAKER0096/000960040.flac", 0.2, 46411),
    ("c3_speechocean762_0457.wav", "speechocean762/SPEAKER0457/004570106.flac", 0.0, None),
    ("c4_speechcommands_893705bb.wav", "speech-commands-v2-test/893705bb/no_893705bb_nohash_0.flac", 0.0, None),
    ("c5_arabiccommands_00000011_short.wav", "arabic-speech-commands/00000011/six_01.flac", "peak", 8011),
]
UNSEEN_CLIPS = [
    ("u0_librispeech_7800_long.wav", "librispeech-train-clean-100/7800/7800-283478-0000.flac", 0.0, None),
    ("u1_librispeech_7312.wav", "librispeech-train-clean-100/7312/7312-92432-0000.flac", 0.0, None),
    ("u2_speechocean762_9604.wav", "speechocean762/SPEAKER9604/096040029.flac", 0.0, None),
    ("u3_speechcommands_b97c9f77.wav", "speech-commands-v2-test/b97c9f77/down_b97c9f77_nohash_0.flac", 0.0, None),
    ("u4_arabiccommands_00000005_short.wav", "arabic-speech-commands/00000005/three_01.flac", "peak", 5603),
    ("u5_dspspeech20_16307130228.wav", "dspspeech-20/16307130228/16307130228-03-01.flac", 0.0, None),
]
CORPUS_LICENSES = {  # from /work/shared/data/speech/README.md
    "librispeech-train-clean-100": "CC BY 4.0 (LibriSpeech, Panayotov et al. 2015)",
    "speechocean762": "Apache-2.0 (speechocean762 authors' card)",
    "speech-commands-v2-test": "CC BY 4.0 (Speech Commands v0.02, Warden 2018)",
    "arabic-speech-commands": "CC BY 4.0 (Ghandoura et al. 2021)",
    "dspspeech-20": "MIT (DSPSpeech-20)",
}
CALIB_CORPORA = ("librispeech-train-clean-100", "speechocean762", "dspspeech-20")
CALIB_BATCHES, CALIB_BATCH_SIZE, CALIB_SECONDS = 4, 8, 1.8


def _speaker_of(rel: str) -> str:
    return rel.split("/")[1]


def _crop(src_rel: str, start, n):
    audio, sr = sf.read(str(SPEECH / src_rel), dtype="int16")
    if sr != SR:
        raise ValueError(f"{src_rel}: {sr} Hz, expected {SR}")
    if audio.ndim > 1:
        audio = audio[:, 0]
    if start == "peak":
        x = audio.astype(np.float64) ** 2
        win = SR // 20
        energy = np.convolve(x, np.ones(win), mode="same")
        centre = int(np.argmax(energy))
        s = min(max(0, centre - n // 2), max(0, len(audio) - n))
    else:
        s = int(round(start * SR))
    e = len(audio) if n is None else s + n
    if e > len(audio):
        raise ValueError(f"{src_rel}: crop [{s}:{e}] beyond {len(audio)} samples")
    return audio[s:e], s


def write_clips(spec, out_dir: Path, title: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, rows = [], []
    for name, src, start, n in spec:
        audio, s = _crop(src, start, n)
        p = out_dir / name
        sf.write(str(p), audio, SR, subtype="PCM_16", format="WAV")
        paths.append(p)
        corpus = src.split("/")[0]
        rows.append(
            f"| {name} | {corpus} | {_speaker_of(src)} | {src} | samples {s}..{s + len(audio)} "
            f"({len(audio) / SR:.3f} s) | {CORPUS_LICENSES[corpus]} |"
        )
    text = [
        f"# {title}",
        "",
        "Cropped from the project's speech pool (/work/shared/data/speech, see its README for the origin of each",
        "corpus) by tools/make_nemo_fixtures.py. 16 kHz mono, 16-bit PCM WAV; samples copied unchanged.",
        "",
        "| file | corpus | speaker id | original file | crop | license |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    (out_dir / "ATTRIBUTION.md").write_text("\n".join(text))
    return paths


def calibration_batches(exclude_speakers: set[str], seed: int = 1234):
    """Fixed-length crops of real speech from speakers not used by any fixture clip."""
    rows = [json.loads(line) for line in open(SPEECH / "manifest.jsonl")]
    rows = [
        r for r in rows
        if r["corpus"] in CALIB_CORPORA and r["sample_rate"] == SR and r["duration"] >= CALIB_SECONDS + 0.05
        and r["label"].split("/")[1] not in exclude_speakers
    ]
    rows.sort(key=lambda r: r["audio_filepath"])
    rng = random.Random(seed)
    picked = rng.sample(rows, CALIB_BATCHES * CALIB_BATCH_SIZE)
    n = int(CALIB_SECONDS * SR)
    clips = []
    for r in picked:
        a, _ = sf.read(str(SPEECH / r["audio_filepath"]), dtype="float32")
        s = rng.randint(0, len(a) - n)
        clips.append(a[s:s + n])
    for b in range(CALIB_BATCHES):
        x = torch.from_numpy(np.stack(clips[b * CALIB_BATCH_SIZE:(b + 1) * CALIB_BATCH_SIZE]))
        yield x, torch.full((x.shape[0],), n, dtype=torch.long)


# --------------------------------------------------------------------------------------------------------
# Configs (values from docs/nemo-reference.md section 1; "tiny" shrinks widths only).

def _preprocessor(n_mels: int, window_size: float) -> dict:
    return {
        "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
        "normalize": "per_feature",
        "window_size": window_size,
        "sample_rate": SR,
        "window_stride": 0.01,
        "window": "hann",
        "features": n_mels,
        "n_fft": 512,
        "frame_splicing": 1,
        "dither": 0.00001,
    }


def _jasper_block(filters, repeat, kernel, dropout, residual, separable=True, se=None) -> dict:
    b = {
        "filters": filters, "repeat": repeat, "kernel": [kernel], "stride": [1], "dilation": [1],
        "dropout": dropout, "residual": residual, "separable": separable,
    }
    if se is not None:
        b.update({"se": se, "se_context_size": -1, "kernel_size_factor": 1.0})
    return b


SPEC_AUGMENT = {
    "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
    "freq_masks": 3, "freq_width": 4, "time_masks": 5, "time_width": 0.03,
}
ANGULAR_LOSS = {"_target_": "nemo.collections.asr.losses.angularloss.AngularSoftmaxLoss", "scale": 30, "margin": 0.2}


def fake_labels() -> list[str]:
    return sorted(f"id{10001 + i}" for i in range(NUM_CLASSES))


def make_config(name: str, size: str) -> dict:
    tiny = size == "tiny"
    train_ds = {"manifest_filepath": None, "sample_rate": SR, "labels": None, "batch_size": 64, "shuffle": True}
    if name in ("speakernet-m", "speakernet-l"):
        if name == "speakernet-m":  # SpeakerNet_verification_3x2x256
            nf, epilog, emb = (32, 64, 32) if tiny else (256, 1500, 256)
            loss, angular = dict(ANGULAR_LOSS), None
        else:  # SpeakerNet_recognition_3x2x512: CrossEntropy -> angular False -> final has a bias
            nf, epilog, emb = (48, 64, [48, 32]) if tiny else (512, 1500, [512, 512])
            loss, angular = {"_target_": "nemo.collections.common.losses.CrossEntropyLoss"}, False
        enc = {
            "_target_": "nemo.collections.asr.modules.ConvASREncoder",
            "feat_in": 64, "activation": "relu", "conv_mask": True,
            "jasper": [
                _jasper_block(nf, 1, 3, 0.5, True),
                _jasper_block(nf, 2, 7, 0.5, True),
                _jasper_block(nf, 2, 11, 0.5, True),
                _jasper_block(nf, 2, 15, 0.5, True),
                _jasper_block(epilog, 1, 1, 0.0, False),
            ],
        }
        dec = {"_target_": "nemo.collections.asr.modules.SpeakerDecoder", "feat_in": epilog,
               "num_classes": NUM_CLASSES, "pool_mode": "xvector", "emb_sizes": emb}
        if angular is not None:
            dec["angular"] = angular
        cfg = {"train_ds": train_ds, "preprocessor": _preprocessor(64, 0.02), "encoder": enc, "decoder": dec,
               "loss": loss}
    elif name == "ecapa-tdnn":
        f, epilog, att, emb = (32, 96, 16, 24) if tiny else (1024, 3072, None, 192)
        enc = {"_target_": "nemo.collections.asr.modules.ECAPAEncoder", "feat_in": 80,
               "filters": [f, f, f, f, epilog], "kernel_sizes": [5, 3, 3, 3, 1], "dilations": [1, 1, 1, 1, 1],
               "scale": 8}
        dec = {"_target_": "nemo.collections.asr.modules.SpeakerDecoder", "feat_in": epilog,
               "num_classes": NUM_CLASSES, "pool_mode": "attention", "emb_sizes": emb, "angular": True}
        if att is not None:
            dec["attention_channels"] = att
        cfg = {"train_ds": train_ds, "preprocessor": _preprocessor(80, 0.025), "spec_augment": dict(SPEC_AUGMENT),
               "encoder": enc, "decoder": dec, "loss": dict(ANGULAR_LOSS)}
    elif name in ("titanet-s", "titanet-l"):
        if tiny:
            f, epilog, att, emb = (32 if name == "titanet-s" else 48), 96, 16, 24
        else:
            f, epilog, att, emb = (256 if name == "titanet-s" else 1024), 3072, None, 192
        enc = {
            "_target_": "nemo.collections.asr.modules.ConvASREncoder",
            "feat_in": 80, "activation": "relu", "conv_mask": True,
            "jasper": [
                _jasper_block(f, 1, 3, 0.0, False, se=True),
                _jasper_block(f, 3, 7, 0.1, True, se=True),
                _jasper_block(f, 3, 11, 0.1, True, se=True),
                _jasper_block(f, 3, 15, 0.1, True, se=True),
                _jasper_block(epilog, 1, 1, 0.0, False, se=True),
            ],
        }
        dec = {"_target_": "nemo.collections.asr.modules.SpeakerDecoder", "feat_in": epilog,
               "num_classes": NUM_CLASSES, "pool_mode": "attention", "emb_sizes": emb}
        if att is not None:
            dec["attention_channels"] = att
        cfg = {"train_ds": train_ds, "preprocessor": _preprocessor(80, 0.025), "spec_augment": dict(SPEC_AUGMENT),
               "encoder": enc, "decoder": dec, "loss": dict(ANGULAR_LOSS)}
    else:
        raise ValueError(name)
    return cfg


# --------------------------------------------------------------------------------------------------------

def build_model(name: str, size: str, seed: int):
    from omegaconf import OmegaConf, open_dict
    from nemo.collections.asr.models import EncDecSpeakerLabelModel

    torch.manual_seed(seed)
    cfg = make_config(name, size)
    # Build without train_ds: ModelPT.__init__ would call setup_training_data(), which replaces
    # train_ds.labels with the labels found in train_ds.manifest_filepath (None here).
    train_ds = cfg.pop("train_ds")
    model = EncDecSpeakerLabelModel(cfg=OmegaConf.create(cfg))
    # NeMo keeps the trained speaker names in cfg.train_ds.labels (setup_training_data writes them there,
    # get_label()/batch_inference() read them back from there).
    train_ds["labels"] = fake_labels()
    with open_dict(model._cfg):
        model._cfg.train_ds = OmegaConf.create(train_ds)
    return model


@torch.no_grad()
def randomise_bn_affine(model, seed: int):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine:
            m.weight.copy_(0.6 + 0.8 * torch.rand(m.weight.shape, generator=g))
            m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))


@torch.no_grad()
def calibrate_bn(model, batches):
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    spec_aug, model.spec_augmentation = model.spec_augmentation, None
    model.train()
    model.preprocessor.eval()  # no dither
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    for x, n in batches:
        model.forward(input_signal=x, input_signal_length=n)
    model.spec_augmentation = spec_aug
    for m in bns:
        m.momentum = 0.1  # restore the constructor default (momentum is not saved in the state_dict)
    model.eval()


@torch.no_grad()
def reference_arrays(model, clip_paths: list[Path], npz_dir: Path, with_encoder_out: bool) -> dict:
    """Layout of <name>.npz:

    clips          (N,) str      clip paths relative to the npz's directory
    audio_len      (N,) int64    samples per clip
    embeddings     (N, D) f32    NeMo model.get_embedding(clip) (raw, not normalised)
    logits         (N, 50) f32   NeMo model.infer_file(clip)[1]
    feat_len       (N,) int64    preprocessor output length (= audio_len // 160)
    enc_len        (N,) int64    encoder output length
    features0      (n_mels, T0) f32  preprocessor output for clip 0, incl. the zero frames up to the pad_to=16 multiple
    features0_len  ()  int64     valid frames of features0
    encoder_out    (C, Tk) f32   encoder output for clip k = encoder_out_clip (the shortest clip),
                                 padded frames included exactly as NeMo computes them
    encoder_out_clip () int64    index k of that clip
    labels         (50,) str     cfg.train_ds.labels
    n_params, spread, nemo_version, torch_version
    """
    model.eval()
    embs, logits, alen, flen, elen = [], [], [], [], []
    features0 = features0_len = None
    k_short = int(np.argmin([sf.info(str(p)).frames for p in clip_paths]))
    encoder_out = None
    for i, p in enumerate(clip_paths):
        emb = model.get_embedding(str(p))
        emb2, lg = model.infer_file(str(p))
        assert torch.equal(emb, emb2)
        embs.append(emb.squeeze(0).float().numpy())
        logits.append(lg.squeeze(0).float().numpy())
        audio, _ = sf.read(str(p))
        x = torch.tensor(np.array([audio]), dtype=torch.float32)
        n = torch.tensor([audio.shape[0]])
        feats, fl = model.preprocessor(input_signal=x, length=n)
        enc, el = model.encoder(audio_signal=feats, length=fl)
        _, emb3 = model.decoder(encoder_output=enc, length=el)
        assert torch.equal(emb, emb3), "stage-by-stage pass differs from get_embedding"
        alen.append(audio.shape[0])
        flen.append(int(fl[0]))
        elen.append(int(el[0]))
        if i == 0:
            features0, features0_len = feats[0].numpy().astype(np.float32), np.int64(fl[0])
        if i == k_short:
            encoder_out = enc[0].numpy().astype(np.float32)
    embs = np.stack(embs).astype(np.float32)
    out = {
        "clips": np.array([os.path.relpath(p, npz_dir) for p in clip_paths]),
        "audio_len": np.array(alen, dtype=np.int64),
        "embeddings": embs,
        "logits": np.stack(logits).astype(np.float32),
        "feat_len": np.array(flen, dtype=np.int64),
        "enc_len": np.array(elen, dtype=np.int64),
        "features0": features0,
        "features0_len": features0_len,
        "labels": np.array(list(model.cfg.train_ds.labels)),
        "n_params": np.int64(sum(p.numel() for p in model.parameters())),
        "spread": np.float32(spread(embs)),
    }
    if with_encoder_out:
        out["encoder_out"] = encoder_out
        out["encoder_out_clip"] = np.int64(k_short)
    import nemo
    out["nemo_version"] = np.array(nemo.__version__)
    out["torch_version"] = np.array(torch.__version__)
    return out


@torch.no_grad()
def check_restore(path: Path, clip: Path, emb0: np.ndarray):
    from nemo.collections.asr.models import EncDecSpeakerLabelModel

    m = EncDecSpeakerLabelModel.restore_from(str(path), map_location="cpu")
    e = m.get_embedding(str(clip)).squeeze(0).numpy()
    if not np.array_equal(e, emb0):
        raise RuntimeError(f"{path}: restored model differs (max abs {np.abs(e - emb0).max():.3g})")


def spread(embs: np.ndarray) -> float:
    """Element-wise between-input spread: max over elements of (max - min across clips)."""
    return float((embs.max(axis=0) - embs.min(axis=0)).max())


def cosine_range(embs: np.ndarray) -> tuple[float, float]:
    e = embs / np.linalg.norm(embs, axis=1, keepdims=True)
    c = e @ e.T
    off = c[~np.eye(len(e), dtype=bool)]
    return float(off.min()), float(off.max())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["tiny", "full"], default="tiny")
    ap.add_argument("--outdir", type=Path, default=None, help="default: tests/fixtures/nemo (tiny), /work/nemo_full (full)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    from nemo.utils import logging as nemo_logging
    nemo_logging.setLevel(nemo_logging.ERROR)

    outdir = args.outdir or (TINY_OUT if args.size == "tiny" else FULL_OUT)
    outdir.mkdir(parents=True, exist_ok=True)
    clips = write_clips(FIXTURE_CLIPS, outdir / "clips", "NeMo parity fixture clips")
    unseen = None
    if args.size == "full":
        unseen = write_clips(UNSEEN_CLIPS, outdir / "unseen_clips", "NeMo parity clips not used by the tiny fixtures")
    exclude = {_speaker_of(s) for _, s, _, _ in FIXTURE_CLIPS + UNSEEN_CLIPS}
    calib = list(calibration_batches(exclude))

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for k, name in enumerate(names):
        if name not in MODELS:
            sys.exit(f"unknown model {name}")
        t0 = time.time()
        seed = args.seed + 1000 * MODELS.index(name)
        model = build_model(name, args.size, seed)
        randomise_bn_affine(model, seed + 1)
        calibrate_bn(model, calib)
        path = outdir / f"{name}.nemo"
        model.save_to(str(path))
        ref = reference_arrays(model, clips, outdir, with_encoder_out=True)
        check_restore(path, clips[0], ref["embeddings"][0])
        np.savez_compressed(outdir / f"{name}.npz", **ref)
        lo, hi = cosine_range(ref["embeddings"])
        msg = (f"{name:13s} size={args.size} params={int(ref['n_params']):,} emb_dim={ref['embeddings'].shape[1]} "
               f"spread={float(ref['spread']):.4g} cos[{lo:.3f},{hi:.3f}] |emb|max={np.abs(ref['embeddings']).max():.3g} "
               f"nemo={path.stat().st_size / 1e6:.3f}MB")
        if unseen is not None:
            ref_u = reference_arrays(model, unseen, outdir, with_encoder_out=True)
            np.savez_compressed(outdir / f"{name}_unseen.npz", **ref_u)
            lo, hi = cosine_range(ref_u["embeddings"])
            msg += f" | unseen spread={float(ref_u['spread']):.4g} cos[{lo:.3f},{hi:.3f}]"
        print(msg + f" ({time.time() - t0:.1f}s)", flush=True)
        del model


if __name__ == "__main__":
    main()
