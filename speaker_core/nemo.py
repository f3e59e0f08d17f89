"""Import NeMo `.nemo` speaker checkpoints (EncDecSpeakerLabelModel) without NeMo and without unpickling code.

A `.nemo` file is a tar holding `model_config.yaml` and `model_weights.ckpt` (a plain state_dict). Members are
read into memory, never extracted to disk, so paths inside the archive cannot escape anywhere.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import torch
import yaml

from .checkpoint import CheckpointError, build_model
from .decoder import DecoderConfig
from .ecapa import EcapaConfig
from .features import FeatureConfig
from .jasper import BlockConfig, JasperConfig
from .model import ModelConfig

MAX_MEMBERS = 64
MAX_CONFIG_BYTES = 4 * 1024**2
MAX_WEIGHTS_BYTES = 2 * 1024**3


def read_archive(path: Path) -> tuple[dict, dict]:
    """Return (config dict, state_dict) from a .nemo tar, refusing links, odd members and oversize files."""
    try:
        tar = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise CheckpointError(f"{path.name} is not a valid .nemo archive (tar): {e}") from None
    with tar:
        found = {}
        for i, m in enumerate(tar):
            if i >= MAX_MEMBERS:
                raise CheckpointError(f"{path.name} holds more than {MAX_MEMBERS} members; refusing it.")
            name = m.name[2:] if m.name.startswith("./") else m.name
            if m.issym() or m.islnk():
                raise CheckpointError(f"{path.name} contains a link ({m.name}); refusing it.")
            if name.startswith("/") or ".." in Path(name).parts:
                raise CheckpointError(f"{path.name} contains an unsafe path ({m.name}); refusing it.")
            if not m.isfile() or name not in ("model_config.yaml", "model_weights.ckpt"):
                continue
            limit = MAX_CONFIG_BYTES if name.endswith(".yaml") else MAX_WEIGHTS_BYTES
            if m.size > limit:
                raise CheckpointError(f"{path.name}: {name} is {m.size} bytes, over the {limit} limit.")
            found[name] = tar.extractfile(m).read()
    if "model_config.yaml" not in found or "model_weights.ckpt" not in found:
        raise CheckpointError(f"{path.name} lacks model_config.yaml or model_weights.ckpt; not a .nemo model.")
    try:
        cfg = yaml.safe_load(found["model_config.yaml"].decode("utf-8"))
    except Exception as e:
        raise CheckpointError(f"{path.name}: model_config.yaml is not valid YAML: {e}") from None
    try:
        state = torch.load(io.BytesIO(found["model_weights.ckpt"]), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path.name}: weights could not be loaded safely: {(str(e) or type(e).__name__).splitlines()[0][:200]}") from None
    if not isinstance(cfg, dict) or not isinstance(state, dict):
        raise CheckpointError(f"{path.name}: unexpected config or weights layout.")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return cfg, state


def _target(section) -> str:
    return str((section or {}).get("_target_", "")) if isinstance(section, dict) else ""


def parse_config(cfg: dict, state: dict) -> ModelConfig:
    """Translate NeMo's model_config.yaml into a ModelConfig, rejecting anything that is not a speaker model."""
    target = str(cfg.get("target", ""))
    dec = cfg.get("decoder")
    if (target and "EncDecSpeakerLabelModel" not in target) or "SpeakerDecoder" not in _target(dec):
        kind = target.rsplit(".", 1)[-1] or _target(dec) or "unknown"
        raise CheckpointError(f"This .nemo holds a {kind} model, not a speaker-embedding model (EncDecSpeakerLabelModel).")
    pre, enc = cfg.get("preprocessor") or {}, cfg.get("encoder") or {}
    sr = int(pre.get("sample_rate", 16000))
    for key, want in (("window", "hann"), ("frame_splicing", 1), ("mag_power", 2.0), ("log", True)):
        if key in pre and pre[key] != want:
            raise CheckpointError(f"Unsupported preprocessor setting {key}={pre[key]!r} (expected {want!r}).")
    if pre.get("normalize", "per_feature") != "per_feature":
        raise CheckpointError(f"Unsupported feature normalisation {pre.get('normalize')!r}.")
    features = FeatureConfig(
        sample_rate=sr,
        n_mels=int(pre.get("features", 64)),
        win_length=int(float(pre.get("window_size", 0.02)) * sr),
        hop_length=int(float(pre.get("window_stride", 0.01)) * sr),
        n_fft=int(pre.get("n_fft") or 512),
        preemph=float(pre.get("preemph", 0.97) or 0.0),
        dither=float(pre.get("dither", 1e-5)),
        log_guard=float(pre.get("log_zero_guard_value", 2.0**-24)),
        pad_to=int(pre.get("pad_to", 16)),
    )
    if "ConvASREncoder" in _target(enc):
        blocks = []
        se_ratio = 8
        for b in enc.get("jasper", []):
            if list(b.get("stride", [1])) != [1] or list(b.get("dilation", [1])) != [1]:
                raise CheckpointError("Only stride-1, dilation-1 Jasper blocks are supported.")
            if b.get("se") and int(b.get("se_context_size", -1)) != -1:
                raise CheckpointError("Only global-context squeeze-excitation is supported.")
            if b.get("residual_dense") or b.get("residual_mode", "add") != "add":
                raise CheckpointError("Only additive, non-dense residuals are supported.")
            k = int(b["kernel"][0]) if isinstance(b["kernel"], (list, tuple)) else int(b["kernel"])
            k = int(k * float(b.get("kernel_size_factor", enc.get("kernel_size_factor", 1.0))))
            k = k if k % 2 else k + 1
            if b.get("se"):
                se_ratio = int(b.get("se_reduction_ratio", 8))
            blocks.append(BlockConfig(int(b["filters"]), k, int(b.get("repeat", 1)), bool(b.get("residual", False)),
                                      bool(b.get("se", False)), float(b.get("dropout", 0.0)), bool(b.get("separable", False))))
        if str(enc.get("activation", "relu")) != "relu":
            raise CheckpointError(f"Unsupported activation {enc.get('activation')!r}.")
        encoder = JasperConfig(feat_in=int(enc["feat_in"]), blocks=blocks, se_reduction_ratio=se_ratio)
        out_ch = blocks[-1].filters
    elif "ECAPAEncoder" in _target(enc):
        if enc.get("res2net"):
            raise CheckpointError("ECAPA checkpoints with res2net=true are not supported.")
        encoder = EcapaConfig(feat_in=int(enc["feat_in"]), filters=[int(x) for x in enc["filters"]],
                              kernel_sizes=[int(x) for x in enc["kernel_sizes"]],
                              dilations=[int(x) for x in enc["dilations"]], groups=int(enc.get("scale", 8)),
                              pad_to=features.pad_to)
        out_ch = encoder.filters[-1]
    else:
        raise CheckpointError(f"Unsupported speaker encoder {_target(enc) or 'unknown'!r}.")
    emb = dec.get("emb_sizes", 256)
    emb = [int(x) for x in (str(emb).split(",") if isinstance(emb, str) else emb if isinstance(emb, list) else [emb])]
    has_bias = "decoder.final.bias" in state
    decoder = DecoderConfig(
        feat_in=int(dec.get("feat_in", out_ch)), emb_sizes=emb, pool_mode=str(dec.get("pool_mode", "xvector")).lower(),
        attention_channels=int(dec.get("attention_channels", 128)),
        num_classes=int(state["decoder.final.weight"].shape[0]) if "decoder.final.weight" in state else 0,
        angular=not has_bias, normalize_weight=False,
    )
    return ModelConfig(name=str(cfg.get("name", "nemo")), features=features, encoder=encoder, decoder=decoder,
                       spec_augment=None)


def _jasper_keys(cfg: JasperConfig) -> dict[str, str]:
    """Our module prefixes -> NeMo's `encoder.encoder.{i}.mconv.{j}` layout (conv, BN, act, dropout, ..., SE)."""
    out = {}
    for i, b in enumerate(cfg.blocks):
        n_conv = 2 if b.separable else 1
        step = n_conv + 3  # convs, BN, activation, dropout
        for r in range(b.repeat):
            base = r * step
            if b.separable:
                out[f"encoder.blocks.{i}.subs.{r}.dw."] = f"encoder.encoder.{i}.mconv.{base}.conv."
                out[f"encoder.blocks.{i}.subs.{r}.pw."] = f"encoder.encoder.{i}.mconv.{base + 1}.conv."
            else:
                out[f"encoder.blocks.{i}.subs.{r}.pw."] = f"encoder.encoder.{i}.mconv.{base}.conv."
            out[f"encoder.blocks.{i}.subs.{r}.bn."] = f"encoder.encoder.{i}.mconv.{base + n_conv}."
        se_idx = (b.repeat - 1) * step + n_conv + 1
        out[f"encoder.blocks.{i}.se.fc1."] = f"encoder.encoder.{i}.mconv.{se_idx}.fc.0."
        out[f"encoder.blocks.{i}.se.fc2."] = f"encoder.encoder.{i}.mconv.{se_idx}.fc.2."
        out[f"encoder.blocks.{i}.res_conv."] = f"encoder.encoder.{i}.res.0.0.conv."
        out[f"encoder.blocks.{i}.res_bn."] = f"encoder.encoder.{i}.res.0.1."
    return out


def _ecapa_keys(cfg: EcapaConfig) -> dict[str, str]:
    out = {"encoder.layer0.conv.": "encoder.layers.0.conv_layer.", "encoder.layer0.bn.": "encoder.layers.0.bn.",
           "encoder.mfa.conv.": "encoder.feature_agg.conv_layer.", "encoder.mfa.bn.": "encoder.feature_agg.bn."}
    for j in range(len(cfg.filters) - 2):
        a, n = f"encoder.blocks.{j}.", f"encoder.layers.{j + 1}."
        out.update({a + "tdnn1.conv.": n + "group_tdnn_block.0.conv_layer.", a + "tdnn1.bn.": n + "group_tdnn_block.0.bn.",
                    a + "conv.": n + "group_tdnn_block.1.", a + "bn.": n + "group_tdnn_block.3.",
                    a + "tdnn2.conv.": n + "group_tdnn_block.4.conv_layer.", a + "tdnn2.bn.": n + "group_tdnn_block.4.bn.",
                    a + "se_down.": n + "se_layer.se_layer.0.", a + "se_bn.": n + "se_layer.se_layer.2.",
                    a + "se_up.": n + "se_layer.se_layer.3."})
    return out


def _decoder_keys(cfg: DecoderConfig) -> dict[str, str]:
    out = {"features.": "preprocessor.featurizer.", "decoder.final.": "decoder.final.",
           "decoder.pool.tdnn.conv.": "decoder._pooling.attention_layer.0.conv_layer.",
           "decoder.pool.tdnn.bn.": "decoder._pooling.attention_layer.0.bn.",
           "decoder.pool.conv.": "decoder._pooling.attention_layer.2."}
    linear = cfg.pool_mode == "xvector"
    for i in range(len(cfg.emb_sizes)):
        out[f"decoder.layers.{i}.fc."] = f"decoder.emb_layers.{i}.{0 if linear else 1}."
        out[f"decoder.layers.{i}.bn."] = f"decoder.emb_layers.{i}.{1 if linear else 0}."
    return out


def map_state(cfg: ModelConfig, expected_keys, state: dict) -> dict:
    table = _decoder_keys(cfg.decoder)
    table.update(_ecapa_keys(cfg.encoder) if isinstance(cfg.encoder, EcapaConfig) else _jasper_keys(cfg.encoder))
    out = {}
    for key in expected_keys:
        prefix = max((p for p in table if key.startswith(p)), key=len, default=None)
        if prefix is None:
            raise CheckpointError(f"No NeMo weight mapping for {key}")
        src = table[prefix] + key[len(prefix):]
        if src not in state:
            raise CheckpointError(f"The .nemo weights lack {src} (needed for {key}); the file does not match its config.")
        out[key] = state[src]
    return out


def load_nemo(path: Path):
    cfg_dict, state = read_archive(Path(path))
    cfg = parse_config(cfg_dict, state)
    from .model import SpeakerModel

    expected = SpeakerModel(cfg).state_dict().keys()
    mapped = map_state(cfg, expected, state)
    labels = (cfg_dict.get("train_ds") or {}).get("labels") or cfg_dict.get("labels") or []
    model = build_model(cfg, mapped, [str(x) for x in labels], {"source": Path(path).name, "format": "nemo"})
    return model
