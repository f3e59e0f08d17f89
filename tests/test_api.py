import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import speaker_core as sc
from speaker_core import api
from speaker_core.checkpoint import save_checkpoint
from speaker_core.model import SpeakerModel
from test_model import randomize_bn, small


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    net = SpeakerModel(small("speakernet-m"))
    randomize_bn(net)
    net.meta = {"calibration": {"threshold": 0.123, "eer": 0.1}}
    save_checkpoint(d / "tiny.pt", net, half=True, drop_head=True)
    return d


@pytest.fixture
def clips(tmp_path, tone):
    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate((16000, 24000, 40000)):
        x = np.roll(np.resize(tone, n), 37 * i) * (0.5 + i / 4) + rng.normal(0, 0.01, n).astype(np.float32)
        p = tmp_path / f"c{i}.wav"
        sf.write(p, x.astype(np.float32), 16000)
        paths.append(p)
    return paths


def test_no_checkpoint_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "CHECKPOINT_DIR", tmp_path)
    with pytest.raises(api.ModelNotFoundError, match="Train one"):
        sc.load_model()
    with pytest.raises(FileNotFoundError):
        sc.load_model("nothing-here")


def test_embed_api(ckpt_dir, clips, device, rel_tol, monkeypatch):
    monkeypatch.setattr(api, "CHECKPOINT_DIR", ckpt_dir)
    assert sc.available_models() == ["tiny"]
    m = sc.load_model("tiny", device=device)
    e = m.embed_file(clips[0])
    assert e.dtype == np.float32 and e.shape == (m.emb_dim,) and abs(np.linalg.norm(e) - 1) < 1e-5
    raw = m.embed_file(clips[0], normalize=False)
    assert np.allclose(raw / np.linalg.norm(raw), e, atol=1e-6)
    w, sr = sf.read(clips[0], dtype="float32")
    assert np.allclose(m.embed(w, sr), e, atol=1e-6)
    # The same audio at 44.1 kHz lands close to it (resampling is not bit-exact).
    import torchaudio.functional as AF

    w44 = AF.resample(torch.from_numpy(w), 16000, 44100).numpy()
    assert float(np.dot(m.embed(w44, 44100), e)) > 0.98
    batch = m.embed_batch(clips + [(w, sr)])
    singles = np.stack([m.embed_file(p) for p in clips] + [e])
    assert np.abs(batch - singles).max() < rel_tol  # unit vectors: absolute is relative


def test_verify_uses_calibrated_threshold(ckpt_dir, clips, monkeypatch):
    monkeypatch.setattr(api, "CHECKPOINT_DIR", ckpt_dir)
    m = sc.load_model(ckpt_dir / "tiny.pt")
    r = m.verify(clips[0], clips[0])
    assert r.threshold == pytest.approx(0.123) and r.same_speaker and r.score == pytest.approx(1.0, abs=1e-5)
    r2 = m.verify(clips[0], clips[2], threshold=1.01)
    assert not r2.same_speaker and r2.threshold == 1.01
    with pytest.raises(sc.AudioError):
        m.verify(clips[0], np.zeros(16000, np.float32))


def test_verify_uses_the_first_max_seconds_like_the_app(ckpt_dir, clips, tmp_path):
    m = sc.load_model(ckpt_dir / "tiny.pt", device="cpu")
    w, sr = sf.read(clips[2], dtype="float32")                       # 2.5 s
    sf.write(tmp_path / "head.wav", w[:24000], sr)                   # its first 1.5 s
    assert m.verify(clips[2], tmp_path / "head.wav", max_seconds=1.5).score == pytest.approx(1.0, abs=1e-5)
    assert m.verify((w, sr), (w[:24000], sr), max_seconds=1.5).score == pytest.approx(1.0, abs=1e-5)
    assert m.verify(clips[2], tmp_path / "head.wav", max_seconds=None).score < 0.999
    assert m.verify(clips[2], tmp_path / "head.wav").score < 0.999       # the default, 30 s, keeps both whole


def test_cli_embed_and_verify(ckpt_dir, clips, tmp_path):
    out = tmp_path / "e.npy"
    env = {"SPEAKER_CORE_CHECKPOINTS": str(ckpt_dir), "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):  # packages installed beside the interpreter's own (e.g. --target)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    r = subprocess.run([sys.executable, "-m", "speaker_core", "embed", *map(str, clips), "--model", "tiny", "--out", str(out)],
                       capture_output=True, text=True, env=env, cwd=api.CHECKPOINT_DIR.parent)
    assert r.returncode == 0, r.stderr
    assert np.load(out).shape[0] == 3
    r = subprocess.run([sys.executable, "-m", "speaker_core", "verify", str(clips[0]), str(clips[1]), "--model", "tiny"],
                       capture_output=True, text=True, env=env, cwd=api.CHECKPOINT_DIR.parent)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"score", "same_speaker", "threshold", "scale", "model"} and out["scale"] == "cosine"
    assert out["threshold"] == 0.123 and out["same_speaker"] == (out["score"] >= 0.123)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 50)
    r = subprocess.run([sys.executable, "-m", "speaker_core", "verify", str(bad), str(clips[1]), "--model", "tiny"],
                       capture_output=True, text=True, env=env, cwd=api.CHECKPOINT_DIR.parent)
    assert r.returncode == 1 and "Could not decode" in r.stderr and "Traceback" not in r.stderr
    for args in (["train", str(tmp_path / "no.yaml")], ["prepare", "--data", str(tmp_path / "no-pool")],
                 ["evaluate", str(ckpt_dir / "tiny.pt"), str(tmp_path / "no-trials.txt")]):
        r = subprocess.run([sys.executable, "-m", "speaker_core", *args], capture_output=True, text=True, env=env,
                           cwd=api.CHECKPOINT_DIR.parent)
        assert r.returncode == 1 and "No such file or directory" in r.stderr and "Traceback" not in r.stderr, args



def test_cli_enroll_and_identify(ckpt_dir, clips, tmp_path):
    db, missing = tmp_path / "g.db", tmp_path / "none.db"
    env = {"SPEAKER_CORE_CHECKPOINTS": str(ckpt_dir), "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]

    def run(*args):
        model = ["--model", "tiny"] if args[0] != "speakers" else []
        return subprocess.run([sys.executable, "-m", "speaker_core", *map(str, args), *model],
                              capture_output=True, text=True, env=env, cwd=api.CHECKPOINT_DIR.parent)

    r = run("enroll", "<b>Ada</b>", clips[0], clips[1], "--gallery", db)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["speaker"] == "<b>Ada</b>" and out["clips"] == 2 and out["model"].startswith("tiny@")
    assert run("enroll", "Bob", clips[2], "--gallery", db).returncode == 0
    r = run("identify", clips[2], "--gallery", db, "--threshold", "0.5")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["speaker"] == "Bob" and out["threshold"] == 0.5 and out["scale"] == "cosine"
    assert [m["speaker"] for m in out["ranking"]][0] == "Bob" and out["score"] == pytest.approx(1.0, abs=1e-3)
    out = json.loads(run("identify", clips[2], "--gallery", db, "--threshold", "1.01").stdout)
    assert out["speaker"] is None   # below the threshold: unknown
    assert json.loads(run("enroll", "Bob", clips[0], "--add", "--gallery", db).stdout)["clips"] == 2
    for args, message in [(("enroll", "Bob", clips[0], "--gallery", db), "already enrolled"),
                          (("enroll", "  ", clips[0], "--gallery", db), "Enter a speaker name"),
                          (("identify", clips[0], "--gallery", missing), "enroll a speaker first"),
                          (("enroll", "Eve", tmp_path / "no.wav", "--gallery", db), "Audio file not found")]:
        r = run(*args)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    listed = json.loads(run("speakers", "--gallery", db).stdout)
    assert [(x["speaker"], x["clips"]) for x in listed] == [("<b>Ada</b>", 2), ("Bob", 2)]
    assert [x["speaker"] for x in json.loads(run("speakers", "--gallery", db, "--delete", "bob").stdout)] == ["<b>Ada</b>"]
    r = run("speakers", "--gallery", db, "--delete", "Bob")
    assert r.returncode == 1 and "No speaker named 'Bob'" in r.stderr
    r = run("speakers", "--gallery", missing)
    assert r.returncode == 1 and "enroll a speaker first" in r.stderr
    assert not missing.exists()   # reading does not create a gallery
    before = db.read_bytes()
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 10)
    r = run("enroll", "Eve", clips[0], "--gallery", bad)
    assert r.returncode == 1 and "Cannot open the gallery file" in r.stderr
    assert bad.read_bytes() == b"not a database" * 10 and db.read_bytes() == before


def test_cli_reads_clips_as_the_app_does(ckpt_dir, clips, tmp_path):
    """Faint noise is refused (it would match other faint noise), the same audio counts once in a voiceprint,
    and clips over 30 s are truncated with a note: the app's rules, on the command line."""
    env = {"SPEAKER_CORE_CHECKPOINTS": str(ckpt_dir), "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]

    def run(*args):
        return subprocess.run([sys.executable, "-m", "speaker_core", *map(str, args), "--model", "tiny"],
                              capture_output=True, text=True, env=env, cwd=api.CHECKPOINT_DIR.parent)

    rng = np.random.default_rng(1)
    faint = tmp_path / "faint.wav"
    sf.write(faint, rng.normal(0, 0.003, 32000).astype(np.float32), 16000)
    r = run("verify", faint, faint)
    assert r.returncode == 1 and "almost no speech" in r.stderr and str(faint) in r.stderr, r.stderr
    db = tmp_path / "g.db"
    r = run("enroll", "Eve", clips[0], faint, "--gallery", db)
    assert r.returncode == 1 and "almost no speech" in r.stderr and not db.exists()
    copy = tmp_path / "copy.flac"   # the same audio in another container
    sf.write(copy, sf.read(clips[0], dtype="float32")[0], 16000)
    r = run("enroll", "Cy", clips[0], copy, clips[1], "--gallery", db)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["clips"] == 2 and out["skipped"] == [str(copy)] and f"same audio as {clips[0]}" in r.stderr
    a, b = out["consistency"]   # each kept clip against the other, as /enroll reports it
    assert a == pytest.approx(b, abs=1e-4) and -1 <= a <= 1
    r = run("enroll", "Cy", copy, "--add", "--gallery", db)
    assert r.returncode == 1 and "Every clip is already in Cy's voiceprint" in r.stderr
    long = tmp_path / "long.wav"
    sf.write(long, np.resize(sf.read(clips[2], dtype="float32")[0], 16000 * 35), 16000)
    r = run("identify", long, "--gallery", db)
    assert r.returncode == 0 and "35 s long: only the first 30 s were used" in r.stderr, r.stderr
    assert "only the first" not in run("identify", long, "--gallery", db, "--max-seconds", "0").stderr
    # another model's gallery: the message names the --model that reads it, or says the weights changed
    other = tmp_path / "other"
    other.mkdir()
    (other / "tiny2.pt").write_bytes((ckpt_dir / "tiny.pt").read_bytes())
    torch.manual_seed(5)
    save_checkpoint(other / "tiny.pt", SpeakerModel(small("speakernet-m")), half=True, drop_head=True)
    for model, message in [("tiny2.pt", "pass --model tiny, or use another --gallery file"),
                           ("tiny.pt", "another version of 'tiny'")]:
        for cmd in (("identify", clips[1]), ("enroll", "Dee", clips[1])):
            r = subprocess.run([sys.executable, "-m", "speaker_core", *map(str, cmd), "--gallery", str(db),
                                "--model", str(other / model)], capture_output=True, text=True, env=env,
                               cwd=api.CHECKPOINT_DIR.parent)
            assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, (cmd, r.stderr)


def test_library_verify_refuses_faint_noise_but_embed_does_not(ckpt_dir):
    m = sc.load_model(ckpt_dir / "tiny.pt")
    faint = np.random.default_rng(2).normal(0, 0.003, 32000).astype(np.float32)
    with pytest.raises(sc.AudioError, match="almost no speech"):
        m.verify((faint, 16000), (faint, 16000))
    assert m.embed(faint).shape == (m.emb_dim,)   # bulk embedding (evaluation, calibration) takes any audio


def _as_norm_checkpoint(path, cohort_dim=None, scale="as-norm"):
    from speaker_core.scoring import ScoreNorm
    torch.manual_seed(0)
    net = SpeakerModel(small("speakernet-m"))
    randomize_bn(net)
    rng = np.random.default_rng(0)
    norm = ScoreNorm(rng.standard_normal((30, cohort_dim or net.emb_dim)), top_k=10)
    net.meta = {"calibration": {"threshold": 1.5, "eer": 0.1, "scale": scale}, "score_norm": norm.to_meta()}
    save_checkpoint(path, net, half=True, drop_head=True)


def test_as_norm_checkpoint_scores_on_its_scale(tmp_path, clips):
    _as_norm_checkpoint(tmp_path / "n.pt")
    m = sc.load_model(tmp_path / "n.pt")
    assert m.scale == "as-norm" and m.threshold == 1.5 and m.norm.cohort.shape == (30, m.emb_dim)
    ea, eb = m.embed_batch(clips[:2])
    r = m.verify(clips[0], clips[1])
    assert abs(r.score - m.norm.pair(ea, eb)) < 1e-5 and r.threshold == 1.5
    assert r.same_speaker == (r.score >= 1.5)
    assert abs(r.score - float(np.dot(ea, eb))) > 1e-3            # not the cosine
    many = m.compare_many(ea, np.stack([ea, eb]))
    assert abs(many[1] - r.score) < 1e-5
    # a cohort without a matching calibration is not used: scores stay cosines
    _as_norm_checkpoint(tmp_path / "c.pt", scale="cosine")
    mc = sc.load_model(tmp_path / "c.pt")
    assert mc.scale == "cosine" and abs(mc.compare(ea, eb) - float(np.dot(ea, eb))) < 1e-5


@pytest.mark.parametrize("scale", ["as-norm", "cosine"])
def test_scoring_in_parts_on_either_scale(tmp_path, tone, scale):
    """A checkpoint with meta["scoring"] scores a pair as the mean over its word parts' pairs, on its own scale;
    embeddings, and pairs of clips too short to cut, are as without it."""
    from speaker_core.audio import word_parts
    _as_norm_checkpoint(tmp_path / "w.pt", scale=scale)
    payload = torch.load(tmp_path / "w.pt", weights_only=True)
    payload["meta"]["scoring"] = {"parts": 1.0}
    torch.save(payload, tmp_path / "p.pt")
    whole, m = sc.load_model(tmp_path / "w.pt", device="cpu"), sc.load_model(tmp_path / "p.pt", device="cpu")
    assert m.parts == 1.0 and whole.parts is None and m.scale == whole.scale == scale
    gap = np.zeros(4000, np.float32)
    x = np.concatenate([gap, np.resize(tone, 56000), gap])              # 3.5 s of tone: 3 parts
    y = np.concatenate([gap, np.resize(tone[::-1], 36000), gap])        # 2.25 s: 2 parts
    px, py = word_parts(x, 1.0), word_parts(y, 1.0)
    assert (len(px), len(py)) == (3, 2)
    want = np.mean([m.compare(m.embed(p), m.embed(q)) for p in px for q in py])
    assert abs(m.score((x, 16000), (y, 16000)) - want) < 1e-5
    assert np.allclose(m.embed(x), whole.embed(x))
    short = np.resize(tone, 24000)                                       # 1.5 s: one part
    assert abs(m.score((short, 16000), (short[::-1].copy(), 16000))
               - whole.score((short, 16000), (short[::-1].copy(), 16000))) < 1e-6


def test_parts_cut_by_words_when_the_checkpoint_says_so(tmp_path, tone):
    """meta["scoring"]["cut"] = "words" (rule 48) cuts the parts by words; without "cut", by time (rule 45's files
    score as before); any other value is refused at load time with a clear message."""
    from speaker_core.audio import word_parts
    _as_norm_checkpoint(tmp_path / "w.pt")
    payload = torch.load(tmp_path / "w.pt", weights_only=True)
    for name, scoring in (("t.pt", {"parts": 1.0}), ("v.pt", {"parts": 1.0, "cut": "words"}),
                          ("bad.pt", {"parts": 1.0, "cut": "syllables"})):
        payload["meta"]["scoring"] = scoring
        torch.save(payload, tmp_path / name)
    t, v = sc.load_model(tmp_path / "t.pt", device="cpu"), sc.load_model(tmp_path / "v.pt", device="cpu")
    assert (t.part_cut, v.part_cut) == ("time", "words")
    with pytest.raises(sc.CheckpointError, match="cut"):
        sc.load_model(tmp_path / "bad.pt")
    edge, pause = np.zeros(4000, np.float32), np.zeros(12000, np.float32)
    x = np.concatenate([edge, np.resize(tone, 40000), pause, np.resize(tone[::-1], 16000), edge])
    y = np.concatenate([edge, np.resize(tone[::-1], 36000), edge])
    for m in (t, v):
        px, py = word_parts(x, 1.0, m.part_cut), word_parts(y, 1.0, m.part_cut)
        want = np.mean([m.compare(m.embed(p), m.embed(q)) for p in px for q in py])
        assert abs(m.score((x, 16000), (y, 16000)) - want) < 1e-5
    assert abs(t.score((x, 16000), (y, 16000)) - v.score((x, 16000), (y, 16000))) > 1e-3


def test_malformed_cohort_is_a_clear_checkpoint_error(tmp_path):
    _as_norm_checkpoint(tmp_path / "bad.pt", cohort_dim=7)
    with pytest.raises(sc.CheckpointError, match="cohort"):
        sc.load_model(tmp_path / "bad.pt")


def test_windowed_embedding_matches_evaluation(ckpt_dir, tmp_path, tone, monkeypatch):
    """A checkpoint with an embedding window embeds a long clip as the mean of its unit window embeddings, the
    same way evaluate/calibrate do (so the calibrated threshold applies), and short clips in one pass."""
    from speaker_core.audio import windows
    from speaker_core.evaluate import embed_waves
    m0 = sc.load_model(ckpt_dir / "tiny.pt", device="cpu")
    save_checkpoint(tmp_path / "win.pt", m0.net, meta={**m0.meta, "embedding": {"window": 1.0, "hop": 0.5}},
                    half=True, drop_head=True)
    m = sc.load_model(tmp_path / "win.pt", device="cpu")
    assert m.window == (1.0, 0.5) and m0.window is None
    rng = np.random.default_rng(1)
    long = (np.resize(tone, 16000 * 4) + rng.normal(0, 0.01, 16000 * 4)).astype(np.float32)
    short = long[:20000]
    segs = windows(long, 1.0, 0.5)
    assert len(segs) == 7
    parts = np.stack([m0.embed(s, 16000) for s in segs])             # unit window embeddings
    want = parts.mean(0) / np.linalg.norm(parts.mean(0))
    assert np.allclose(m.embed(long, 16000), want, atol=1e-5)
    monkeypatch.setattr(api, "WINDOW_CHUNK", 3)                       # 7 windows in passes of 3, 3 and 1
    assert np.allclose(m.embed(long, 16000), want, atol=1e-5)
    assert not np.allclose(m.embed(long, 16000), m0.embed(long, 16000), atol=1e-3)
    assert np.allclose(m.embed(short, 16000), m0.embed(short, 16000), atol=1e-6)
    ev = embed_waves(m.net, [long, short], window=m.window)
    ev /= np.linalg.norm(ev, axis=1, keepdims=True)
    assert np.allclose(ev, m.embed_batch([(long, 16000), (short, 16000)]), atol=1e-5)


def test_long_clip_of_a_whole_clip_model_goes_in_pieces_with_the_same_embedding(ckpt_dir, tone, monkeypatch):
    """A whole-clip SpeakerNet embeds a clip longer than PIECE_SECONDS piece by piece (bounded memory), and the
    embedding is the one-pass embedding NeMo's get_embedding gives."""
    m = sc.load_model(ckpt_dir / "tiny.pt", device="cpu")
    assert m.window is None and m.net.pieceable
    rng = np.random.default_rng(2)
    long = (np.resize(tone, 16000 * 5) * np.linspace(0.2, 1, 16000 * 5) + rng.normal(0, 0.01, 16000 * 5))
    long = long.astype(np.float32)
    one_pass = m.embed(long, 16000)
    calls = []
    monkeypatch.setattr(api, "PIECE_SECONDS", 1.0)
    real = api.Recognizer._forward_pieces
    monkeypatch.setattr(api.Recognizer, "_forward_pieces", lambda self, w: calls.append(w.size) or real(self, w))
    assert np.allclose(m.embed(long, 16000), one_pass, atol=1e-5)
    assert calls == [16000 * 5]
    assert np.allclose(m.embed(long[:12000], 16000), m.embed_batch([(long[:12000], 16000)])[0]) and len(calls) == 1


@pytest.mark.parametrize("bad", [{"window": "x", "hop": 1}, {"window": 3.0}, {"window": 0.1, "hop": 0.05},
                                 {"window": 3.0, "hop": 4.0}, {"window": float("nan"), "hop": 1.0}])
def test_malformed_embedding_window_is_refused(ckpt_dir, tmp_path, bad):
    m0 = sc.load_model(ckpt_dir / "tiny.pt", device="cpu")
    save_checkpoint(tmp_path / "bad.pt", m0.net, meta={**m0.meta, "embedding": bad}, half=True, drop_head=True)
    with pytest.raises(sc.CheckpointError, match="window"):
        sc.load_model(tmp_path / "bad.pt")


def test_canonical_edges_checkpoint_embeds_like_evaluation(ckpt_dir, tmp_path, tone):
    """A checkpoint with ``edges`` embeds every clip's canonical form, the same way evaluate/calibrate do, so
    the silence a recording has around its words no longer moves its embedding."""
    from speaker_core.audio import CANONICAL_EDGES, canonical_edges
    from speaker_core.evaluate import embed_waves
    m0 = sc.load_model(ckpt_dir / "tiny.pt", device="cpu")
    save_checkpoint(tmp_path / "edges.pt", m0.net, meta={**m0.meta, "edges": CANONICAL_EDGES}, half=True,
                    drop_head=True)
    m = sc.load_model(tmp_path / "edges.pt", device="cpu")
    assert m.edges == CANONICAL_EDGES and m0.edges is None
    words = np.resize(tone, 24000).astype(np.float32)
    take1 = np.concatenate([np.zeros(8000, np.float32), words, np.zeros(8000, np.float32)])
    take2 = np.concatenate([np.zeros(40000, np.float32), words, np.zeros(24000, np.float32)])
    assert np.allclose(m.embed(take1, 16000), m.embed(take2, 16000), atol=1e-6)
    assert not np.allclose(m0.embed(take1, 16000), m0.embed(take2, 16000), atol=1e-3)
    assert np.allclose(m.embed(take1, 16000), m0.embed(canonical_edges(take1, **CANONICAL_EDGES), 16000), atol=1e-6)
    ev = embed_waves(m.net, [take1, take2], edges=m.edges)
    ev /= np.linalg.norm(ev, axis=1, keepdims=True)
    assert np.allclose(ev, m.embed_batch([(take1, 16000), (take2, 16000)]), atol=1e-5)


@pytest.mark.parametrize("bad", [{"keep": "x", "pad": 1, "db": -50}, {"keep": 0.2, "pad": 1.5},
                                 {"keep": 0.2, "pad": 99, "db": -50}, {"keep": 0.2, "pad": 1.5, "db": 0},
                                 {"keep": 0.2, "pad": 1.5, "db": -50, "detector": "<script>alert(1)</script>"}])
def test_malformed_edges_are_refused(ckpt_dir, tmp_path, bad):
    m0 = sc.load_model(ckpt_dir / "tiny.pt", device="cpu")
    save_checkpoint(tmp_path / "bad.pt", m0.net, meta={**m0.meta, "edges": bad}, half=True, drop_head=True)
    with pytest.raises(sc.CheckpointError, match="edges"):
        sc.load_model(tmp_path / "bad.pt")


def test_cli_lists_its_commands(capsys):
    from speaker_core.__main__ import COMMANDS, main

    assert main([]) == 2 and main(["-h"]) == 0
    assert main(["frob"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frob'" in err and all(f"  {name} " in err for name in COMMANDS)
