"""Score fusion (speaker_core.fusion): members pinned by hash, the fused embedding, calibration and refusals."""
import json
import math

import numpy as np
import pytest
import torch

import speaker_core as sc
from speaker_core.checkpoint import load_checkpoint
from speaker_core.evaluate import items_from_folder, main_calibrate, main_evaluate
from speaker_core.fusion import main_fuse
from test_evaluate import _folder, _tiny_checkpoint


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    """Two tiny calibrated members and their 0.7 / 0.3 fusion, in one folder."""
    tmp = tmp_path_factory.mktemp("fusion")
    root = str(tmp / "eval")
    _folder(root)
    rows = [{"audio_filepath": it["path"], "label": f"{it['set']}/{it['speaker']}", "corpus": it["set"]}
            for it in items_from_folder(root)]
    for name, rr in (("train", [r for r in rows if r["label"].endswith("spk2")]),
                     ("dev", [r for r in rows if not r["label"].endswith("spk2")])):
        with open(tmp / f"{name}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rr)
    ck = tmp / "ck"
    ck.mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        _tiny_checkpoint(str(ck / f"{name}.pt"), seed=seed)
        assert main_calibrate([str(ck / f"{name}.pt"), "--train", str(tmp / "train.jsonl"), "--dev",
                               str(tmp / "dev.jsonl"), "--top-k", "1", "--crop-eval", "0.5", "--bootstrap", "10"]) == 0
    assert main_fuse([str(ck / "ab.pt"), f"{ck / 'a.pt'}:0.7", f"{ck / 'b.pt'}:0.3", "--dev", str(tmp / "dev.jsonl"),
                      "--top-k", "1", "--crop-eval", "0.5", "--bootstrap", "10"]) == 0
    return tmp, ck


def test_fused_embedding_is_the_weighted_concatenation(fused, tone):
    _, ck = fused
    f = sc.load_model(ck / "ab.pt", device="cpu")
    a, b = sc.load_model(ck / "a.pt", device="cpu"), sc.load_model(ck / "b.pt", device="cpu")
    assert [(m.name, w) for m, w in f.members] == [("a", 0.7), ("b", 0.3)]
    assert f.emb_dim == a.emb_dim + b.emb_dim and f.scale == "as-norm" and f.threshold == f.meta["calibration"]["threshold"]
    rng = np.random.default_rng(0)
    x = (np.resize(tone, 24000) + rng.normal(0, 0.01, 24000)).astype(np.float32)
    y = (np.resize(tone, 20000)[::-1] * 0.5 + rng.normal(0, 0.05, 20000)).astype(np.float32)
    ex, ey = f.embed(x), f.embed(y)
    want = np.concatenate([math.sqrt(0.7) * a.embed(x), math.sqrt(0.3) * b.embed(x)])
    assert np.allclose(ex, want, atol=1e-6)
    # its cosine is the weighted sum of the members' cosines
    cos = lambda m, u, v: float(m.embed(u) @ m.embed(v))
    assert abs(float(ex @ ey) - (0.7 * cos(a, x, y) + 0.3 * cos(b, x, y))) < 1e-5
    # the batched evaluation path gives the same embeddings
    from speaker_core.evaluate import embed_waves
    ev = embed_waves(f, [x, y])
    assert np.allclose(ev / np.linalg.norm(ev, axis=1, keepdims=True), f.embed_batch([(x, 16000), (y, 16000)]),
                       atol=1e-5)


def test_fusion_evaluates_from_the_command_line(fused):
    tmp, ck = fused
    out = str(tmp / "r")
    assert main_evaluate([str(ck / "ab.pt"), str(tmp / "dev.jsonl"), "--out", out, "--threads", "1"]) == 0
    r = json.load(open(out + ".json"))
    stored = sc.load_model(ck / "ab.pt", device="cpu").meta["dev_eer"]
    assert r["scale"] == "as-norm" and abs(r["pooled"]["eer"] - stored["pooled"]) < 1e-6


def test_a_fusion_that_scores_in_parts(fused, tone):
    """fuse --parts (rule 45): a pair scores the mean over the pairs of its clips' word parts, in the library, in
    evaluate and in the stored calibration alike; a pair of one-part clips scores as before."""
    from speaker_core.audio import word_parts
    tmp, ck = fused
    dev = ["--dev", str(tmp / "dev.jsonl"), "--top-k", "1", "--crop-eval", "0.5", "--bootstrap", "10"]
    members = [f"{ck / 'a.pt'}:0.7", f"{ck / 'b.pt'}:0.3"]
    assert main_fuse([str(ck / "abp.pt"), *members, *dev, "--parts", "0.5"]) == 0
    assert main_fuse([str(ck / "bad.pt"), *members, *dev, "--parts", "0.2"]) == 2 and not (ck / "bad.pt").exists()
    f, whole = sc.load_model(ck / "abp.pt", device="cpu"), sc.load_model(ck / "ab.pt", device="cpu")
    assert f.parts == 0.5 and f.meta["scoring"] == {"parts": 0.5} and whole.parts is None
    rng = np.random.default_rng(1)
    gap = np.zeros(4000, np.float32)
    x = np.concatenate([gap, np.resize(tone, 40000) + rng.normal(0, 0.01, 40000).astype(np.float32), gap])
    y = np.concatenate([gap, np.resize(tone[::-1], 24000), gap])
    px, py = word_parts(x, 0.5), word_parts(y, 0.5)
    assert len(px) >= 4 and len(py) >= 2
    want = np.mean([f.norm.pair(f.embed(p), f.embed(q)) for p in px for q in py])
    assert abs(f.score((x, 16000), (y, 16000)) - want) < 1e-4
    assert abs(f.score((x, 16000), (y, 16000)) - whole.score((x, 16000), (y, 16000))) > 1e-3
    short = np.resize(tone, 12000)        # 0.75 s of words: one part
    assert len(word_parts(short, 0.5)) == 1
    assert abs(f.score((short, 16000), (x[:14000], 16000)) - whole.score((short, 16000), (x[:14000], 16000))) < 1e-6
    # --cut words (rule 48): stored, used by the library
    assert main_fuse([str(ck / "abw.pt"), *members, *dev, "--parts", "0.5", "--cut", "words"]) == 0
    fw = sc.load_model(ck / "abw.pt", device="cpu")
    assert fw.meta["scoring"] == {"parts": 0.5, "cut": "words"} and (f.part_cut, fw.part_cut) == ("time", "words")
    pw = word_parts(x, 0.5, "words")
    want = np.mean([fw.norm.pair(fw.embed(p), fw.embed(q)) for p in pw for q in word_parts(y, 0.5, "words")])
    assert abs(fw.score((x, 16000), (y, 16000)) - want) < 1e-4
    # evaluate scores in parts as the stored calibration did; --whole gives the whole-clip fusion's EER
    out = str(tmp / "rp")
    assert main_evaluate([str(ck / "abp.pt"), str(tmp / "dev.jsonl"), "--out", out, "--threads", "1"]) == 0
    r = json.load(open(out + ".json"))
    assert r["parts"] == 0.5 and abs(r["pooled"]["eer"] - f.meta["dev_eer"]["pooled"]) < 1e-6
    assert main_evaluate([str(ck / "abp.pt"), str(tmp / "dev.jsonl"), "--out", out, "--whole"]) == 0
    r = json.load(open(out + ".json"))
    assert r["parts"] is None and abs(r["pooled"]["eer"] - whole.meta["dev_eer"]["pooled"]) < 1e-6
    # a malformed setting is refused at load
    payload = torch.load(ck / "abp.pt", weights_only=True)
    payload["meta"]["scoring"] = {"parts": "2"}
    torch.save(payload, ck / "abx.pt")
    try:
        with pytest.raises(sc.CheckpointError, match="malformed scoring setting"):
            sc.load_model(ck / "abx.pt")
    finally:   # the folder is shared with the other tests of this module (the app lists it)
        for name in ("abx.pt", "abp.pt"):
            (ck / name).unlink()


def test_a_fusion_is_refused_when_a_member_changed_or_is_missing(fused, tmp_path):
    import shutil
    _, ck = fused
    for f in ("a.pt", "b.pt", "ab.pt"):
        shutil.copy(ck / f, tmp_path / f)
    sc.load_model(tmp_path / "ab.pt")
    m = load_checkpoint(tmp_path / "b.pt")
    from speaker_core.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "b.pt", m, meta={**m.meta, "note": "recalibrated"}, half=True, drop_head=True)
    with pytest.raises(sc.CheckpointError, match="calibrated with another b.pt.*fuse"):
        sc.load_model(tmp_path / "ab.pt")
    (tmp_path / "b.pt").unlink()
    with pytest.raises(sc.CheckpointError, match="fuses b.pt, which is not in"):
        sc.load_model(tmp_path / "ab.pt")
    with pytest.raises(sc.CheckpointError, match="fusion of checkpoints"):
        load_checkpoint(tmp_path / "ab.pt")


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["members"][0].update(file="../a.pt"), "file name in the same folder"),
    (lambda p: p["members"][0].update(file="/etc/passwd"), "file name in the same folder"),
    (lambda p: p["members"][0].update(weight=float("nan")), "invalid weight"),
    (lambda p: p["members"][0].update(weight=0.5), "add up to 1"),
    (lambda p: p["members"].pop(), "at least two members"),
    (lambda p: p["members"][1].update(file="ab.pt", sha256=None), "no sha256"),
])
def test_malformed_fusion_files_are_refused(fused, tmp_path, edit, message):
    import shutil
    _, ck = fused
    for f in ("a.pt", "b.pt"):
        shutil.copy(ck / f, tmp_path / f)
    payload = torch.load(ck / "ab.pt", weights_only=True)
    edit(payload)
    torch.save(payload, tmp_path / "ab.pt")
    with pytest.raises(sc.CheckpointError, match=message):
        sc.load_model(tmp_path / "ab.pt")


def test_fuse_refuses_members_it_cannot_fuse(fused, tmp_path):
    tmp, ck = fused
    _tiny_checkpoint(str(ck / "raw.pt"))   # no cohort
    dev = ["--dev", str(tmp / "dev.jsonl")]
    assert main_fuse([str(ck / "x.pt"), f"{ck / 'a.pt'}:0.5", f"{ck / 'raw.pt'}:0.5", *dev]) == 2
    assert main_fuse([str(tmp_path / "x.pt"), f"{ck / 'a.pt'}:0.5", f"{ck / 'b.pt'}:0.5", *dev]) == 2   # other folder
    assert main_fuse([str(ck / "x.pt"), f"{ck / 'a.pt'}:0.5", f"{ck / 'b.pt'}:0.6", *dev]) == 2        # sum != 1
    assert not (ck / "x.pt").exists()
    (ck / "raw.pt").unlink()


def test_the_app_serves_a_fusion(fused):
    from speaker_core.app_logic import Settings, Studio
    from test_app_logic import ex
    _, ck = fused
    s = Studio(Settings(checkpoint_dir=ck, gallery_path=":memory:"))
    assert "ab" in s.model_choices()
    r = s.verify(ex("so0049_a.wav"), ex("so0049_b.wav"), "ab", None)[0]
    assert r["model"] == "ab" and r["scale"] == "as-norm" and r["threshold"] == round(s.models.threshold("ab"), 3)
    assert "score fusion: 0.7 × a + 0.3 × b" in s.model_card("ab")
    ids = {s.models.model_id(n) for n in ("a", "b", "ab")}
    assert len(ids) == 3


def test_a_fusion_of_fusions_is_refused(fused, tmp_path):
    import shutil
    from speaker_core.fusion import file_sha256
    _, ck = fused
    for f in ("a.pt", "b.pt"):
        shutil.copy(ck / f, tmp_path / f)
    shutil.copy(ck / "ab.pt", tmp_path / "inner.pt")
    payload = torch.load(ck / "ab.pt", weights_only=True)
    payload["members"][1].update(file="inner.pt", sha256=file_sha256(tmp_path / "inner.pt"))
    torch.save(payload, tmp_path / "outer.pt")
    with pytest.raises(sc.CheckpointError, match="inner.pt is itself a fusion"):
        sc.load_model(tmp_path / "outer.pt")


def test_the_shipped_default_is_the_fusion_of_the_shipped_files():
    """The default (rule 29) pins both shipped checkpoints: replacing either without `fuse` again is refused at load."""
    from speaker_core import api
    from speaker_core.fusion import FusedRecognizer
    if api.DEFAULT_MODEL != "ecapa-speakernet-fusion":
        pytest.skip("SPEAKER_DEFAULT_MODEL chooses another default")
    model = sc.load_model()
    assert isinstance(model, FusedRecognizer)
    assert [(m.name, w) for m, w in model.members] == [("ecapa-small", 0.7), ("speakernet-m", 0.3)]
    assert model.emb_dim == 192 + 256 and model.scale == "as-norm"
    assert model.threshold == model.meta["calibration"]["threshold"]
    assert model.meta["score_norm"]["cohort"].shape[1] == model.emb_dim
    assert model.parts == 2.0   # long clips scored in 2 s parts of their words (rule 45)
    # alone, ecapa-small scores in parts too (rule 46); speakernet-m failed that rule and embeds whole clips
    assert [m.parts for m, _ in model.members] == [2.0, None]


def test_a_default_fusion_that_no_longer_loads_gives_way(fused, tmp_path, caplog):
    """A member replaced after `fuse` (e.g. a retrained checkpoint copied in): the app still starts on a model that
    loads, and choosing the fusion says what to do."""
    import shutil

    import gradio as gr
    from speaker_core.app_logic import Settings, Studio
    from test_app_logic import ex
    _, ck = fused
    for f in ("a.pt", "b.pt", "ab.pt"):
        shutil.copy(ck / f, tmp_path / f)
    shutil.copy(ck / "b.pt", tmp_path / "a.pt")               # a different a.pt than the one fused
    s = Studio(Settings(checkpoint_dir=tmp_path, gallery_path=":memory:", default_model="ab"))
    assert s.default_model() == "a"
    assert "ab does not load" in caplog.text
    assert s.verify(ex("so0049_a.wav"), ex("so0049_b.wav"), None, None)[0]["model"] == "a"
    with pytest.raises(gr.Error, match="calibrated with another a.pt"):
        s.verify(ex("so0049_a.wav"), ex("so0049_b.wav"), "ab", None)
