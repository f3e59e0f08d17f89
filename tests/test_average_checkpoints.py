"""tools/average_checkpoints.py: a weight average of checkpoints that share an architecture."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from speaker_core.checkpoint import load_checkpoint, save_checkpoint
from speaker_core.model import SpeakerModel, preset

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("average_checkpoints", ROOT / "tools" / "average_checkpoints.py")
avg = importlib.util.module_from_spec(spec)
sys.modules["average_checkpoints"] = avg
spec.loader.exec_module(avg)


def _save(path, name, seed):
    torch.manual_seed(seed)
    model = SpeakerModel(preset(name, num_classes=0))
    model.meta = {"calibration": {"threshold": 1.0}, "name": "x"}
    save_checkpoint(path, model, labels=[], half=True, drop_head=True)


def test_average_is_the_elementwise_mean(tmp_path):
    a, b, out = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "ab.pt"
    _save(a, "ecapa-small", 0)
    _save(b, "ecapa-small", 1)
    assert avg.main([str(out), str(a), str(b)]) == 0
    ma, mb, mo = (load_checkpoint(p).state_dict() for p in (a, b, out))
    for k, v in mo.items():
        if v.is_floating_point() and not k.startswith("features."):
            want = ((ma[k] + mb[k]) / 2).half().float()          # the output is stored in fp16 too
            assert torch.allclose(v, want, atol=1e-3), k
    meta = load_checkpoint(out).meta
    assert "calibration" not in meta and meta["averaged_from"] == [f"{tmp_path.name}/a.pt", f"{tmp_path.name}/b.pt"]
    # an average of an average names what the inner one was made of
    c, abc = tmp_path / "c.pt", tmp_path / "abc.pt"
    _save(c, "ecapa-small", 2)
    assert avg.main([str(abc), str(out), str(c)]) == 0
    n = tmp_path.name
    assert load_checkpoint(abc).meta["averaged_from"] == [
        f"{n}/ab.pt (itself a uniform average of 2: {n}/a.pt, {n}/b.pt)", f"{n}/c.pt"]
    assert load_checkpoint(abc).meta["name"] == "x"                  # the first input's name, unless --name


def test_average_takes_a_name(tmp_path):
    a, b, out = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "ab.pt"
    _save(a, "ecapa-small", 0)
    _save(b, "ecapa-small", 1)
    assert avg.main([str(out), str(a), "--name", "ecapa-small", str(b)]) == 0
    assert load_checkpoint(out).meta["name"] == "ecapa-small"
    assert load_checkpoint(out).meta["averaged_from"] == [f"{tmp_path.name}/a.pt", f"{tmp_path.name}/b.pt"]
    assert avg.main([str(out), str(a), str(b), "--name"]) == 2


def test_average_refuses_different_architectures(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    _save(a, "ecapa-small", 0)
    _save(b, "speakernet-m", 0)
    with pytest.raises(SystemExit, match="different architecture"):
        avg.main([str(tmp_path / "o.pt"), str(a), str(b)])
    assert not (tmp_path / "o.pt").exists()
