import io
import pickle
import tarfile

import pytest
import torch
import yaml

from speaker_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from speaker_core.model import SpeakerModel, preset


def make_model(classes=5):
    torch.manual_seed(0)
    m = SpeakerModel(preset("speakernet-m", num_classes=classes)).eval()
    m.labels = [f"spk{i}" for i in range(classes)]
    m.meta = {"calibration": {"threshold": 0.31, "eer": 0.05}}
    return m


def test_roundtrip_full_and_exported(tmp_path):
    m = make_model()
    x, n = torch.randn(1, 16000) * 0.1, torch.tensor([16000])
    save_checkpoint(tmp_path / "full.pt", m)
    m2 = load_checkpoint(tmp_path / "full.pt")
    assert m2.labels == m.labels and m2.meta["calibration"]["threshold"] == 0.31
    with torch.inference_mode():
        assert torch.equal(m(x, n), m2(x, n))
    save_checkpoint(tmp_path / "small.pt", m, half=True, drop_head=True)
    m3 = load_checkpoint(tmp_path / "small.pt")
    assert m3.decoder.final is None and m3.config.decoder.num_classes == 0
    assert (tmp_path / "small.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    with torch.inference_mode():
        a, b = m(x, n), m3(x, n)
    assert torch.nn.functional.cosine_similarity(a, b).item() > 0.999


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/speaker_core_pwned",))


def test_pickled_code_never_runs(tmp_path):
    import os

    if os.path.exists("/tmp/speaker_core_pwned"):
        os.remove("/tmp/speaker_core_pwned")
    p = tmp_path / "evil.pt"
    p.write_bytes(pickle.dumps({"format": "speaker_core/1", "x": Evil()}))
    with pytest.raises(CheckpointError):
        load_checkpoint(p)
    torch.save({"format": "speaker_core/1", "state_dict": Evil()}, tmp_path / "evil2.pt", _use_new_zipfile_serialization=True)
    with pytest.raises(CheckpointError, match=r"pickled Python objects \(posix.system\).*refused without running"):
        load_checkpoint(tmp_path / "evil2.pt")
    assert not os.path.exists("/tmp/speaker_core_pwned")


@pytest.mark.parametrize("payload, message", [(b"", "empty"), (b"garbage" * 100, "not a PyTorch checkpoint file"),
                                              ("truncated", "truncated or corrupt"),
                                              (None, "invalid config: 'encoder' is missing")])
def test_malformed_native(tmp_path, payload, message):
    p = tmp_path / "bad.pt"
    if payload is None:
        torch.save({"format": "speaker_core/1", "config": {"name": "x"}, "state_dict": {}}, p)
    elif payload == "truncated":
        torch.save({"format": "speaker_core/1", "state_dict": {"w": torch.zeros(1000)}}, p)
        p.write_bytes(p.read_bytes()[:300])
    else:
        p.write_bytes(payload)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(p)


def test_wrong_format_and_mismatched_weights(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="not a speaker_core checkpoint"):
        load_checkpoint(tmp_path / "a.pt")
    m = make_model()
    save_checkpoint(tmp_path / "b.pt", m)
    payload = torch.load(tmp_path / "b.pt", weights_only=True)
    payload["state_dict"].pop("decoder.layers.0.fc.weight")
    torch.save(payload, tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    # a tensor of the wrong shape: a clear message that names it, not a torch RuntimeError
    payload = torch.load(_saved(tmp_path / "c.pt"), weights_only=True)
    payload["state_dict"]["decoder.layers.0.fc.weight"] = torch.zeros(3)
    torch.save(payload, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="do not fit its config: size mismatch for decoder.layers.0.fc.weight"):
        load_checkpoint(tmp_path / "c.pt")


def _saved(path):
    save_checkpoint(path, make_model())
    return path


@pytest.mark.parametrize("cal", [{"threshold": "abc"}, {"threshold": float("nan")}, {"threshold": True}, [0.3]])
def test_malformed_calibration_is_refused_at_load(tmp_path, cal):
    from speaker_core.api import Recognizer

    m = make_model()
    m.meta = {"calibration": cal}
    with pytest.raises(CheckpointError, match="malformed calibration"):
        Recognizer(m, device="cpu", name="bad")


def nemo_tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):  # ("symlink", target)
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def weights_bytes(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def test_nemo_hostile_archives(tmp_path):
    cfg = yaml.safe_dump({"target": "nemo.collections.asr.models.label_models.EncDecSpeakerLabelModel"}).encode()
    w = weights_bytes({"x": torch.zeros(1)})
    cases = {
        "traversal": {"../../etc/model_config.yaml": cfg, "./model_weights.ckpt": w},
        "symlink": {"./model_config.yaml": ("symlink", "/etc/passwd"), "./model_weights.ckpt": w},
        "missing": {"./model_config.yaml": cfg},
        "asr": {"./model_config.yaml": yaml.safe_dump({"target": "nemo.collections.asr.models.EncDecCTCModel",
                                                         "decoder": {"_target_": "ConvASRDecoder"}}).encode(),
                "./model_weights.ckpt": w},
        "badyaml": {"./model_config.yaml": b"a: [unclosed", "./model_weights.ckpt": w},
        "pickle": {"./model_config.yaml": cfg, "./model_weights.ckpt": pickle.dumps(Evil())},
    }
    msgs = {"traversal": "unsafe path", "symlink": "link", "missing": "lacks", "asr": "not a speaker",
            "badyaml": "not valid YAML", "pickle": "loaded safely"}
    for name, members in cases.items():
        p = tmp_path / f"{name}.nemo"
        nemo_tar(p, members)
        with pytest.raises(CheckpointError, match=msgs[name]):
            load_checkpoint(p)
    (tmp_path / "notatar.nemo").write_bytes(b"hello" * 100)
    with pytest.raises(CheckpointError, match="not a valid .nemo"):
        load_checkpoint(tmp_path / "notatar.nemo")
