import json
import os

import numpy as np
import torch

from speaker_core.evaluate import (at_threshold_by_speech, build_trials, evaluate_embeddings, items_from_folder,
                                   main_evaluate, split_single_items, trial_min_speech, trial_speakers)


def _tiny_checkpoint(path, seed: int = 0):
    import dataclasses
    from speaker_core.checkpoint import save_checkpoint
    from speaker_core.model import SpeakerModel, preset
    cfg = preset("speakernet-m", num_classes=0)
    blocks = [dataclasses.replace(b, filters=16) for b in cfg.encoder.blocks[:-1]]
    blocks.append(dataclasses.replace(cfg.encoder.blocks[-1], filters=32))
    cfg.encoder.blocks = blocks
    cfg.decoder = dataclasses.replace(cfg.decoder, feat_in=32, emb_sizes=[16])
    torch.manual_seed(seed)
    save_checkpoint(path, SpeakerModel(cfg), labels=[], meta={"calibration": {"threshold": 0.5}}, half=True,
                    drop_head=True)


def _folder(root):
    import soundfile as sf
    rng = np.random.RandomState(0)
    for s in ("setA", "setB"):
        for spk in range(3):
            for k in range(2):
                p = os.path.join(root, s, f"spk{spk}", f"{k}.wav")
                os.makedirs(os.path.dirname(p), exist_ok=True)
                t = np.arange(16000) / 16000
                x = 0.3 * np.sin(2 * np.pi * (120 + 40 * spk) * t) + 0.02 * rng.randn(len(t))
                sf.write(p, x.astype(np.float32), 16000)


def test_build_trials_counts():
    items = [{"speaker": f"s{i // 3}", "set": "a" if i < 9 else "b"} for i in range(15)]
    tr = build_trials(items, max_nontarget=10, seed=0)
    a = tr["a"]
    assert sum(y for *_, y in a) == 9               # 3 speakers x C(3,2)
    assert sum(1 - y for *_, y in a) == 10          # capped, sampled
    assert all(items[i]["set"] == "a" and items[j]["set"] == "a" for i, j, _ in a)
    assert build_trials(items, 10, 0) == tr         # seeded
    b = tr["b"]                                     # 2 speakers: 6 target, 9 non-target (< cap: all)
    assert sum(y for *_, y in b) == 6 and sum(1 - y for *_, y in b) == 9
    emb = np.zeros((15, 2))
    emb[:, 0] = [int(it["speaker"][1:]) for it in items]
    emb[:, 1] = 1.0
    res, scores = evaluate_embeddings(np.stack([np.cos(emb[:, 0]), np.sin(emb[:, 0])], 1), tr)
    assert res["sets"]["a"]["eer"] == 0.0 and res["pooled"]["n_target"] == 15


def test_trial_speakers_follow_score_order():
    items = [{"set": "s", "speaker": "a"}, {"set": "s", "speaker": "a"}, {"set": "s", "speaker": "b"},
             {"set": "t", "speaker": None}]
    ts, ns = trial_speakers(items, [(0, 2, 0), (0, 1, 1), (1, 3, 0)])
    assert list(ts) == ["s/a"]
    assert [list(r) for r in ns] == [["s/a", "s/b"], ["s/a", "#3"]]   # an unlabelled clip is its own speaker


def test_speech_of_the_shorter_clip_follows_score_order():
    """``trial_min_speech`` lists trials as ``evaluate_embeddings`` pools scores (per set: targets, then
    non-targets), so the bins pair each score with its own trial."""
    trials = {"s": [(0, 2, 0), (0, 1, 1)], "t": [(2, 3, 1), (1, 3, 0)]}
    mt, mn = trial_min_speech(np.array([1.0, 5.0, 2.0, 8.0]), trials)
    assert list(mt) == [1.0, 2.0] and list(mn) == [1.0, 5.0]
    emb = np.eye(4)[[0, 0, 1, 1]].astype(float)   # clips 0, 1 alike; 2, 3 alike
    _, scores = evaluate_embeddings(emb, trials)
    pt, pn = scores["pooled"]
    assert list(pt) == [1.0, 1.0] and list(pn) == [0.0, 0.0]
    rows = at_threshold_by_speech(pt, pn, mt, mn, 0.5)
    assert [(r["seconds"], r["n_target"], r["n_nontarget"]) for r in rows] == [("0-1.5", 1, 1), ("1.5-3", 1, 0),
                                                                               ("3-6", 0, 1)]
    assert rows[1]["false_accept_pct"] is None and rows[2]["false_reject_pct"] is None


def test_calibration_keeps_the_long_pairs_when_there_are_enough():
    from speaker_core.evaluate import MIN_NONTARGETS, MIN_TARGETS, calibration_from_scores
    rng = np.random.default_rng(0)
    t, n = rng.normal(2, 1, 300), rng.normal(0, 1, 3000)
    mt, mn = np.r_[np.full(250, 1.0), np.full(50, 4.0)], np.r_[np.full(2800, 1.0), np.full(200, 8.0)]
    cal = calibration_from_scores(t, n, 1.0, 0.16, scale="as-norm", min_speech=(mt, mn))
    long = cal["long_pairs"]
    assert (long["min_speech_s"], long["n_target"], long["n_nontarget"]) == (3.0, 50, 200)
    assert long["target_scores"] == [round(float(x), 4) for x in t[250:]]
    assert len(cal["target_scores"]) == 300 and len(cal["nontarget_scores"]) == 2000   # subsampled as before
    # too few long pairs to describe, or no durations: nothing kept
    few = (np.r_[np.full(300 - MIN_TARGETS + 1, 1.0), np.full(MIN_TARGETS - 1, 4.0)], mn)
    assert "long_pairs" not in calibration_from_scores(t, n, 1.0, 0.16, min_speech=few)
    assert "long_pairs" not in calibration_from_scores(t, n, 1.0, 0.16)
    assert MIN_NONTARGETS <= 200
    # how many people the long same-speaker pairs come from, and the voiceprint comparisons that explain Identify
    who = np.array([f"s{i % 7}" for i in range(300)], dtype=object)
    vs, same = rng.normal(0, 1, 150), np.r_[np.ones(30, bool), np.zeros(120, bool)]
    cal = calibration_from_scores(t, n, 1.0, 0.16, min_speech=(mt, mn), target_speakers=who,
                                  voiceprints=(vs, same, np.array([f"q{i % 9}" for i in range(150)])))
    assert cal["long_pairs"]["target_speakers"] == 7
    vp = cal["voiceprints"]
    assert (vp["clips_per_print"], vp["n_target"], vp["n_nontarget"], vp["speakers"]) == (3, 30, 120, 9)
    assert vp["target_scores"] == [round(float(x), 4) for x in vs[:30]]
    few = (vs[:40], same[:40], np.array(["q"] * 40))   # 30 same-speaker but 10 other-speaker comparisons
    assert "voiceprints" not in calibration_from_scores(t, n, 1.0, 0.16, voiceprints=few)


def test_split_single():
    items = [{"speaker": "x", "set": "s", "path": "p"}, {"speaker": "y", "set": "s"}, {"speaker": "y", "set": "s"}]
    out, d = split_single_items(items, [10.0, 10.0, 10.0], 4.0)
    assert len(out) == 4 and out[0]["segment"] == (0.0, 5.0) and d[:2] == [5.0, 5.0]


def test_evaluate_tiny_folder(tmp_path):
    root = str(tmp_path / "eval")
    _folder(root)
    assert len(items_from_folder(root)) == 12
    ck = str(tmp_path / "tiny.pt")
    _tiny_checkpoint(ck)
    out = str(tmp_path / "res")
    assert main_evaluate([ck, root, "--out", out, "--threads", "1"]) == 0
    res = json.load(open(out + ".json"))
    assert set(res["sets"]) == {"setA", "setB"}
    assert res["sets"]["setA"]["n_target"] == 3 and res["sets"]["setA"]["n_nontarget"] == 12
    assert 0.0 <= res["pooled"]["eer"] <= 100.0 and os.path.getsize(out + ".png") > 1000
    assert "eer_ci95" not in res["pooled"]
    # at the checkpoint's own threshold, per length of the shorter clip's words: every 1 s tone is one bin
    at = res["pooled"]["at_calibrated_threshold"]
    assert [(r["seconds"], r["n_target"], r["n_nontarget"]) for r in at["by_speech_seconds"]] == [("0-1.5", 6, 24)]
    assert at["by_speech_seconds"][0]["false_accept_pct"] == at["false_accept_pct"]
    assert main_evaluate([ck, root, "--out", out + "_b", "--threads", "1", "--bootstrap", "50"]) == 0
    lo, hi = json.load(open(out + "_b.json"))["pooled"]["eer_ci95"]
    assert 0.0 <= lo <= hi <= 100.0
    assert main_evaluate([ck, root, "--out", out + "_p", "--threads", "1", "--pad-edges", "0.5"]) == 0
    assert json.load(open(out + "_p.json"))["pad_edges"] == [0.5, -50.0]
    assert main_evaluate([ck, root, "--out", out + "_z", "--threads", "1", "--pad-edges", "0.5", "--pad-db", "zeros"]) == 0
    assert json.load(open(out + "_z.json"))["pad_edges"] == [0.5, "zeros"]
    # only the second clip of each trial padded: the same trials, scored across the two conditions
    assert main_evaluate([ck, root, "--out", out + "_s", "--threads", "1", "--pad-edges", "0.5", "--pad-side", "second"]) == 0
    r_s = json.load(open(out + "_s.json"))
    assert r_s["pad_side"] == "second" and r_s["pooled"]["n_target"] == res["pooled"]["n_target"]
    # a trials file with relative paths
    tf = os.path.join(root, "trials.txt")
    with open(tf, "w") as f:
        f.write("setA/spk0/0.wav setA/spk0/1.wav 1\nsetA/spk0/0.wav setA/spk1/0.wav 0\n"
                "setB/spk2/0.wav setB/spk2/1.wav target\nsetB/spk2/0.wav setB/spk1/1.wav nontarget\n")
    assert main_evaluate([ck, tf, "--out", out + "_t", "--threads", "1"]) == 0
    r2 = json.load(open(out + "_t.json"))
    assert r2["sets"]["trials"]["n_target"] == 2 and r2["sets"]["trials"]["n_nontarget"] == 2


def test_calibrate_adds_cohort_and_rescales(tmp_path):
    """`calibrate` builds the cohort from training speakers only, re-calibrates on AS-norm, and `evaluate`
    then scores on that scale (or raw cosines with --cosine)."""
    from speaker_core.api import load_model
    from speaker_core.evaluate import main_calibrate
    root = str(tmp_path / "eval")
    _folder(root)
    rows = [{"audio_filepath": it["path"], "label": f"{it['set']}/{it['speaker']}", "corpus": it["set"]}
            for it in items_from_folder(root)]
    train = [r for r in rows if r["label"].endswith("spk2")]
    dev = [r for r in rows if not r["label"].endswith("spk2")]
    for name, rr in (("train", train), ("dev", dev), ("overlap", rows)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rr)
    ck = str(tmp_path / "tiny.pt")
    _tiny_checkpoint(ck)
    # dev speakers in the cohort manifest are refused
    assert main_calibrate([ck, "--train", str(tmp_path / "overlap.jsonl"), "--dev", str(tmp_path / "dev.jsonl")]) == 2
    assert main_calibrate([ck, "--train", str(tmp_path / "train.jsonl"), "--dev", str(tmp_path / "dev.jsonl"),
                           "--top-k", "1", "--crop-eval", "0.5"]) == 0
    m = load_model(ck)
    assert m.scale == "as-norm" and m.norm.cohort.shape[0] == 2 and m.norm.top_k == 1
    cal = m.meta["calibration"]
    assert cal["scale"] == "as-norm" and len(cal["target_scores"]) == 4 and len(cal["nontarget_scores"]) == 8
    assert m.meta["dev_eer"]["scale"] == "as-norm" and "cosine" in m.meta["dev_eer"]
    lo, hi = m.meta["dev_eer"]["ci95"]["pooled"]
    assert 0.0 <= lo <= hi <= 100.0 and "bootstrap" in m.meta["dev_eer"]["ci95"]["method"]
    # the threshold's errors by the length of the words; 1 s tones make no long pairs to keep
    by = m.meta["dev_eer"]["at_threshold_by_speech"]
    assert [r["seconds"] for r in by] == ["0-1.5"] and "long_pairs" not in m.meta["calibration"]
    assert "voiceprints" not in m.meta["calibration"]   # two files per speaker: no voiceprint trials
    out = str(tmp_path / "r")
    assert main_evaluate([ck, str(tmp_path / "dev.jsonl"), "--out", out, "--threads", "1"]) == 0
    assert json.load(open(out + ".json"))["scale"] == "as-norm"
    assert main_evaluate([ck, str(tmp_path / "dev.jsonl"), "--out", out, "--threads", "1", "--cosine"]) == 0
    assert json.load(open(out + ".json"))["scale"] == "cosine"
    assert "embedding" not in m.meta  # no recipe: whole clips by default
    # an embedding window is stored with the calibration made with it, and used by evaluate
    assert main_calibrate([ck, "--train", str(tmp_path / "train.jsonl"), "--dev", str(tmp_path / "dev.jsonl"),
                           "--top-k", "1", "--crop-eval", "0", "--window", "0.5"]) == 0
    assert load_model(ck).window == (0.5, 0.25)
    assert main_evaluate([ck, str(tmp_path / "dev.jsonl"), "--out", out, "--threads", "1"]) == 0
    assert json.load(open(out + ".json"))["window"] == [0.5, 0.25]
    assert main_evaluate([ck, str(tmp_path / "dev.jsonl"), "--out", out, "--threads", "1", "--whole"]) == 0
    assert json.load(open(out + ".json"))["window"] is None
    assert main_calibrate([ck, "--train", str(tmp_path / "train.jsonl"), "--dev", str(tmp_path / "dev.jsonl"),
                           "--top-k", "1", "--crop-eval", "0", "--window", "0"]) == 0
    assert load_model(ck).window is None
    # canonical edges: stored with the calibration made with them, kept by a plain re-calibration, used by evaluate
    base = ["--train", str(tmp_path / "train.jsonl"), "--dev", str(tmp_path / "dev.jsonl"), "--top-k", "1",
            "--crop-eval", "0", "--bootstrap", "10"]
    assert main_calibrate([ck, *base, "--edges", "canonical"]) == 0
    thr_edges = load_model(ck).threshold
    assert load_model(ck).edges == {"keep": 0.2, "pad": 1.5, "db": -50.0, "detector": "words"}
    assert main_calibrate([ck, *base]) == 0 and load_model(ck).edges is not None
    assert load_model(ck).threshold == thr_edges
    assert main_evaluate([ck, str(tmp_path / "dev.jsonl"), "--out", out, "--threads", "1"]) == 0
    assert json.load(open(out + ".json"))["edges"] == {"keep": 0.2, "pad": 1.5, "db": -50.0, "detector": "words"}
    assert main_calibrate([ck, *base, "--edges", "none"]) == 0 and load_model(ck).edges is None
    # scoring in parts (rule 46): stored, kept by a plain re-calibration, used by evaluate; 0 turns it off
    assert main_calibrate([ck, *base, "--parts", "0.2"]) == 2
    assert main_calibrate([ck, *base, "--parts", "0.5"]) == 0 and load_model(ck).parts == 0.5
    assert main_calibrate([ck, *base]) == 0 and load_model(ck).meta["scoring"] == {"parts": 0.5}
    assert main_evaluate([ck, str(tmp_path / "dev.jsonl"), "--out", out, "--threads", "1"]) == 0
    r = json.load(open(out + ".json"))
    assert r["parts"] == 0.5 and abs(r["pooled"]["eer"] - load_model(ck).meta["dev_eer"]["pooled"]) < 1e-6
    # parts cut by words (rule 48): stored, kept by a plain re-calibration and used by evaluate
    assert main_calibrate([ck, *base, "--cut", "words"]) == 0
    assert load_model(ck).meta["scoring"] == {"parts": 0.5, "cut": "words"} and load_model(ck).part_cut == "words"
    assert main_calibrate([ck, *base]) == 0 and load_model(ck).part_cut == "words"
    assert main_evaluate([ck, str(tmp_path / "dev.jsonl"), "--out", out, "--threads", "1"]) == 0
    r = json.load(open(out + ".json"))
    assert abs(r["pooled"]["eer"] - load_model(ck).meta["dev_eer"]["pooled"]) < 1e-6 and r["part_cut"] == "words"
    assert main_calibrate([ck, *base, "--cut", "time"]) == 0 and load_model(ck).meta["scoring"] == {"parts": 0.5}
    assert main_calibrate([ck, *base, "--parts", "0"]) == 0 and load_model(ck).parts is None
    assert "scoring" not in load_model(ck).meta


def test_cohort_speeds_add_virtual_speakers(tmp_path):
    """Each speed other than 1 adds every training speaker once more, played that much faster; the rows at speed 1
    are the plain cohort's, unchanged. calibrate refuses speeds it cannot play."""
    from speaker_core.checkpoint import load_checkpoint
    from speaker_core.evaluate import build_cohort, main_calibrate
    root = str(tmp_path / "eval")
    _folder(root)
    rows = [{"audio_filepath": it["path"], "label": f"{it['set']}/{it['speaker']}", "corpus": it["set"]}
            for it in items_from_folder(root)]
    ck = str(tmp_path / "tiny.pt")
    _tiny_checkpoint(ck)
    model = load_checkpoint(ck).eval()
    with torch.no_grad():
        plain, names = build_cohort(model, rows)
        more, more_names = build_cohort(model, rows, speeds=(1.0, 0.9, 1.25))
    assert more.shape == (3 * len(names), plain.shape[1]) and np.allclose(more[:len(names)], plain, atol=1e-6)
    assert more_names == names + [n + "@0.9" for n in names] + [n + "@1.25" for n in names]
    # a virtual speaker's row is the plain cohort of the same clips written out played faster
    import soundfile as sf
    from speaker_core.augment import resample_speed
    fast = []
    for r in rows:
        p = str(tmp_path / "fast" / (r["label"] + "_" + os.path.basename(r["audio_filepath"])))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        x, _ = sf.read(r["audio_filepath"], dtype="float32")
        sf.write(p, resample_speed(torch.from_numpy(x), 1.25).numpy(), 16000, subtype="FLOAT")
        fast.append({**r, "audio_filepath": p})
    with torch.no_grad():
        fast_plain, _ = build_cohort(model, fast)
    assert np.allclose(more[2 * len(names):], fast_plain, atol=1e-5)
    assert not np.allclose(more[2 * len(names):], plain, atol=1e-3)
    train, dev = (tmp_path / "train.jsonl"), (tmp_path / "dev.jsonl")
    train.write_text("".join(json.dumps(r) + "\n" for r in rows if r["label"].endswith("spk2")))
    dev.write_text("".join(json.dumps(r) + "\n" for r in rows if not r["label"].endswith("spk2")))
    base = [ck, "--train", str(train), "--dev", str(dev), "--top-k", "1", "--crop-eval", "0", "--bootstrap", "10"]
    for bad in ("", "1.0,1.0", "fast", "0.1"):
        assert main_calibrate([*base, "--cohort-speeds", bad]) == 2
    assert main_calibrate([*base, "--cohort-speeds", "0.9,1.1"]) == 0
    m = load_checkpoint(ck)
    assert m.meta["score_norm"]["cohort_speakers"] == 4 and "speeds 0.9, 1.1" in m.meta["score_norm"]["cohort_source"]


def test_evaluate_refuses_a_checkpoint_without_its_cohort(tmp_path):
    import pytest
    from speaker_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    root = str(tmp_path / "eval")
    _folder(root)
    ck = str(tmp_path / "tiny.pt")
    _tiny_checkpoint(ck)
    m = load_checkpoint(ck)
    save_checkpoint(ck, m, meta={"calibration": {"threshold": 1.0, "scale": "as-norm"}}, half=True, drop_head=True)
    with pytest.raises(CheckpointError, match="cohort"):
        main_evaluate([ck, root, "--out", str(tmp_path / "r"), "--threads", "1"])
    assert main_evaluate([ck, root, "--out", str(tmp_path / "r"), "--threads", "1", "--cosine"]) == 0


def test_pad_edges_levels_and_lengths():
    from speaker_core.evaluate import pad_edges
    w = np.full(1600, 0.5, np.float32)
    (a,) = pad_edges([w], 1.0, -50.0)
    assert len(a) == 1600 + 2 * 16000 and np.array_equal(a[16000:17600], w)
    edges = np.concatenate([a[:16000], a[17600:]])
    assert abs(20 * np.log10(edges.std()) + 50.0) < 0.5
    (z,) = pad_edges([w], 0.5, float("-inf"))
    assert len(z) == 1600 + 16000 and not z[:8000].any() and not z[-8000:].any()


def test_cross_condition_scoring_pairs_first_with_second():
    from speaker_core.evaluate import score_trials
    from speaker_core.scoring import ScoreNorm
    rng = np.random.default_rng(0)
    emb, other = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    trials = [(0, 1, 1), (0, 2, 0), (3, 2, 0)]
    norm = ScoreNorm(rng.normal(size=(20, 8)), top_k=5)
    for nm in (None, norm):
        same = score_trials(emb, trials, nm, emb_b=emb)
        np.testing.assert_allclose(np.concatenate(same), np.concatenate(score_trials(emb, trials, nm)))
    t, n = score_trials(emb, trials, emb_b=other)
    e, o = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (emb, other))
    np.testing.assert_allclose(t, [e[0] @ o[1]])
    np.testing.assert_allclose(n, [e[0] @ o[2], e[3] @ o[2]])


def test_swap_edges_keeps_the_words_and_takes_silence_from_another_speaker_of_the_set():
    from speaker_core.evaluate import swap_edges
    rng = np.random.RandomState(1)
    word = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 16000)).astype(np.float32)

    def clip(lead, tail, level):   # seconds of noise at a level that marks whose silence it is
        q = lambda s: (rng.standard_normal(int(s * 16000)) * level).astype(np.float32)
        return np.concatenate([q(lead), word, q(tail)])
    items = [{"set": "a", "speaker": "x"}, {"set": "a", "speaker": "x"}, {"set": "a", "speaker": "y"},
             {"set": "b", "speaker": "z"}, {"set": "b", "speaker": "z"}]
    waves = [clip(1.0, 0.5, 1e-3), clip(0.8, 0.8, 1e-3), clip(0.3, 1.5, 3e-3), clip(1, 1, 2e-3), clip(1, 1, 2e-3)]
    out = swap_edges(waves, items, seed=0)
    assert swap_edges(waves, items, seed=0)[2].size == out[2].size          # seeded
    for i in (0, 1):   # x's clips can only get y's silence: 0.3 s before, 1.5 s after, at y's level
        assert abs(out[i].size - (0.3 + 0.5 + 1.5) * 16000) < 0.05 * 16000
        assert 2e-3 < out[i][:2000].std() < 4e-3 and 2e-3 < out[i][-2000:].std() < 4e-3
        assert np.max(np.abs(np.correlate(out[i], word[:4000], "valid"))) > 0.99 * np.dot(word[:4000], word[:4000])
    assert out[2][:2000].std() < 2e-3                                      # y gets one of x's silences
    assert all(out[i] is waves[i] for i in (3, 4))                         # set b has one speaker: no donor


def test_trials_scored_in_parts():
    """score_trials with parts (embed_parts): a pair scores the mean over its part pairs; one part each is the
    plain score."""
    from speaker_core.evaluate import score_trials
    from speaker_core.scoring import ScoreNorm
    rng = np.random.default_rng(0)
    emb, norm = rng.standard_normal((3, 8)), ScoreNorm(rng.standard_normal((20, 8)), top_k=5)
    trials = [(0, 1, 1), (0, 2, 0), (1, 2, 0)]
    one = (emb, np.arange(3))
    for nm in (norm, None):
        assert all(np.allclose(x, y) for x, y in zip(score_trials(emb, trials, nm, parts=one),
                                                     score_trials(emb, trials, nm)))
    pe = np.concatenate([emb[:1], rng.standard_normal((2, 8)), emb[2:]])     # clip 1 in two parts
    t, n = score_trials(emb, trials, norm, parts=(pe, np.array([0, 1, 1, 2])))
    assert np.isclose(t[0], np.mean([norm.pair(emb[0], pe[1]), norm.pair(emb[0], pe[2])]))
    assert np.isclose(n[0], norm.pair(emb[0], emb[2]))
    assert np.isclose(n[1], norm.mean_pair(pe[1:3], emb[2:]))
    # the second clip of each trial in another condition, with its own parts
    pe_b = pe + 0.1
    t2, n2 = score_trials(emb, trials, norm, emb_b=emb + 0.1, parts=(pe, np.array([0, 1, 1, 2])),
                          parts_b=(pe_b, np.array([0, 1, 1, 2])))
    assert np.isclose(t2[0], np.mean([norm.pair(emb[0], pe_b[1]), norm.pair(emb[0], pe_b[2])]))
