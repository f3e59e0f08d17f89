"""The app's handlers (speaker_core.app_logic), called directly: no server, no browser.

Runs against the default shipped checkpoint (checkpoints/ecapa-speakernet-fusion.pt, a fusion of the two shipped
files) when it exists; otherwise against a random-weight
model written to a temp folder (behavioural checks that need a trained model then skip).
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import gradio as gr
from speaker_core import api
from speaker_core import app_logic as al
from speaker_core import views
from speaker_core.app_logic import Query, Settings, Studio
from speaker_core.gallery import GalleryError


def _untrained(arch: str = "ecapa-small", seed: int = 0):
    """A randomly initialised model with a fixed seed, for tests that need checkpoints but no trained weights."""
    import torch

    from speaker_core.model import SpeakerModel, preset
    torch.manual_seed(seed)
    return SpeakerModel(preset(arch)).eval()


def _save(path, meta=None, net=None, arch: str = "ecapa-small", seed: int = 0) -> None:
    from speaker_core.checkpoint import save_checkpoint
    save_checkpoint(path, net if net is not None else _untrained(arch, seed), labels=[], meta=meta or {})

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "assets" / "examples"
REF = ROOT / "assets" / "reference"
DEFAULT = api.DEFAULT_MODEL
SHIPPED = ROOT / "checkpoints" / f"{DEFAULT}.pt"
USABLE_EER = 20.0  # % pooled dev EER: below this a checkpoint is expected to get real pairs right


def _shipped_eer() -> float | None:
    if not SHIPPED.is_file():
        return None
    import torch

    meta = torch.load(SHIPPED, map_location="cpu", weights_only=True).get("meta") or {}
    eer = (meta.get("dev_eer") or {}).get("pooled")
    if eer is None and (meta.get("calibration") or {}).get("eer") is not None:
        eer = 100 * float(meta["calibration"]["eer"])
    return float(eer) if eer is not None else None


TRAINED = SHIPPED.is_file()
SHIPPED_EER = _shipped_eer()
# Behavioural checks (same-speaker pairs score higher, the right speaker is identified) need a
# checkpoint that has actually learned: the shipped one, once its dev EER says so.
needs_trained = pytest.mark.skipif(
    SHIPPED_EER is None or SHIPPED_EER > USABLE_EER,
    reason=f"needs a trained checkpoints/{DEFAULT}.pt with pooled dev EER <= {USABLE_EER}% "
           f"(shipped: {'none' if SHIPPED_EER is None else f'{SHIPPED_EER:.1f}%'})")


def make_checkpoint_dir(tmp_path_factory) -> Path:
    """The real checkpoints folder, or a temp one holding a random-weight default model.

    SPEAKER_TEST_CHECKPOINTS=<folder> runs the app tests against another folder of checkpoints.
    """
    import os

    if os.environ.get("SPEAKER_TEST_CHECKPOINTS"):
        return Path(os.environ["SPEAKER_TEST_CHECKPOINTS"])
    if TRAINED:
        return ROOT / "checkpoints"
    d = tmp_path_factory.mktemp("ckpt")
    rng = np.random.default_rng(0)
    cal = {"threshold": 0.35, "eer": 0.05,
           "target_scores": [float(x) for x in rng.normal(0.6, 0.1, 200)],
           "nontarget_scores": [float(x) for x in rng.normal(0.1, 0.1, 500)]}
    from speaker_core.model import PRESETS
    # a plain model under the default's name (the default fusion needs its trained members)
    _save(d / f"{DEFAULT}.pt", {"calibration": cal}, arch=DEFAULT if DEFAULT in PRESETS else "ecapa-small")
    return d


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    return Studio(Settings(checkpoint_dir=make_checkpoint_dir(tmp_path_factory),
                           gallery_path=al.SESSION, max_seconds=6.0))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Edge-case audio files."""
    d = tmp_path_factory.mktemp("clips")
    wave, sr = sf.read(EX / "so0049_a.wav", dtype="float32")
    files = {}
    sf.write(d / "silent.wav", np.zeros(2 * sr, np.float32), sr)
    files["silent"] = d / "silent.wav"
    from speaker_core.audio import MIN_DURATION
    sf.write(d / "short.wav", wave[: int(0.5 * MIN_DURATION * sr)], sr)
    files["short"] = d / "short.wav"
    sf.write(d / "long.wav", np.tile(wave, 2)[: int(7.5 * sr)], sr)  # > max_seconds=6
    files["long"] = d / "long.wav"
    sf.write(d / "clipped.wav", np.clip(wave * 20, -1, 1), sr)
    files["clipped"] = d / "clipped.wav"
    noise = np.random.default_rng(0).standard_normal(3 * sr).astype(np.float32) * 0.003
    sf.write(d / "hiss.wav", noise, sr)  # -50 dBFS hiss, no speech: above the silence floor
    files["hiss"] = d / "hiss.wav"
    sf.write(d / "loud_hiss.wav", noise * 30, sr)  # steady -20 dBFS noise: loud, but no speech in it
    files["loud_hiss"] = d / "loud_hiss.wav"
    sf.write(d / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * sr) / sr).astype(np.float32), sr)
    files["tone"] = d / "tone.wav"
    loud = np.random.default_rng(1).standard_normal(wave.size).astype(np.float32) * np.sqrt(np.mean(wave ** 2))
    sf.write(d / "noisy.wav", wave + loud * 10 ** (-5 / 20), sr)  # speech 5 dB above steady noise: warned, scored
    files["noisy"] = d / "noisy.wav"
    sf.write(d / "quiet.wav", wave * 0.1, sr)  # speech 20 dB down
    files["quiet"] = d / "quiet.wav"
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    files["corrupt"] = d / "corrupt.wav"
    (d / "notes.txt").write_text("this is not audio\n" * 50)
    files["text"] = d / "notes.txt"
    with open(d / "huge.wav", "wb") as f:
        f.truncate((al.MAX_UPLOAD_MB + 1) * 2**20)
    files["huge"] = d / "huge.wav"
    (d / "empty.wav").write_bytes(b"")
    files["empty"] = d / "empty.wav"
    return {k: str(v) for k, v in files.items()}


def ex(name):
    return str(EX / name)


def refs(speaker):
    return [str(p) for p in sorted(REF.glob(f"{speaker}_*.flac"))]


# -------------------------------------------------------------------------------- settings
def test_settings_from_env():
    local = Settings.from_env({})
    assert local.gallery_path == "gallery.db" and not local.per_session
    space = Settings.from_env({"SPACE_ID": "me/studio"})
    assert space.per_session and space.on_space
    pinned = Settings.from_env({"SPACE_ID": "me/studio", "SPEAKER_GALLERY_PATH": "/data/g.db"})
    assert pinned.gallery_path == "/data/g.db" and not pinned.per_session
    assert Settings.from_env({"SPEAKER_MAX_SECONDS": "12"}).max_seconds == 12.0


def test_models_listed_and_cached(studio):
    assert DEFAULT in studio.model_choices()
    assert studio.default_model() == DEFAULT
    m1 = studio.models.get(DEFAULT)
    assert studio.models.get(None) is m1  # loaded once
    assert studio.models.model_id(DEFAULT).startswith(DEFAULT + "@")
    t = studio.default_threshold()
    lo, hi = studio.threshold_range()
    assert lo < t < hi
    out = studio.on_model_change(DEFAULT)
    assert out[0] == out[1] and out[0]["value"] == t and (out[0]["minimum"], out[0]["maximum"]) == (lo, hi)
    assert out[3] is None and "press Verify again" in out[4]
    assert out[7] is None and "press Identify again" in out[8] and out[9] is None
    # the result plot shows only beside a result (the cleared one hides it)
    assert studio.result_plot_visibility(out[3])["visible"] is False
    assert studio.result_plot_visibility({"score": 1.0})["visible"] is True
    for bad in ["../../etc/passwd", "nope", DEFAULT + ".pt/../x"]:
        with pytest.raises(gr.Error, match="Unknown model"):
            studio.verify(ex("so0049_a.wav"), ex("so0049_b.wav"), bad, 0.5)
    assert "architecture" in studio.model_card()


def test_no_checkpoint_gives_clear_error(tmp_path):
    s = Studio(Settings(checkpoint_dir=tmp_path, gallery_path=al.SESSION))
    assert s.model_choices() == [] and s.default_model() is None
    with pytest.raises(gr.Error, match="No model checkpoint"):
        s.verify(ex("so0049_a.wav"), ex("so0049_b.wav"))
    assert "No model loaded" in s.model_card()


# -------------------------------------------------------------------------------- verify
def test_verify_outputs_and_redecide_without_embedding(studio, monkeypatch):
    result, decision, plot, facts = studio.verify(ex("so0049_a.wav"), ex("so0049_b.wav"),
                                                  DEFAULT, 0.3)
    assert set(result) >= {"score", "same_speaker", "threshold", "clips", "warnings"}
    assert result["scale"] == studio.models.get(DEFAULT).scale and result["threshold"] == 0.3
    assert np.isfinite(result["score"]) and (result["scale"] != "cosine" or -1 <= result["score"] <= 1)
    assert views.SCALE_LABEL[result["scale"]] in decision
    assert result["same_speaker"] == (result["score"] >= 0.3)
    assert ("Same speaker" in decision) == result["same_speaker"]
    assert "<svg" in plot and f"this pair {result['score']:.2f}" in plot
    assert "so0049_a.wav" in facts and "kHz" in facts
    c = result["clips"][0]
    assert c["sample_rate"] == 16000 and 0 < c["speech_fraction"] <= 1 and c["duration_s"] == 4.0

    def boom(*a, **k):
        raise AssertionError("redecide must not embed")

    monkeypatch.setattr(studio.models.get(DEFAULT), "embed_batch", boom)
    for t, same in [(result["score"] - 0.01, True), (result["score"] + 0.01, False)]:
        r2, d2, p2, _ = studio.redecide(result, t)
        assert r2["same_speaker"] is same and r2["score"] == result["score"]
        assert f"threshold {t:.2f}" in p2   # the plot's threshold line moves with it
        assert ("Same speaker" if same else "Different speakers") in d2
    assert studio.redecide(None, 0.5) == (gr.skip(),) * 4


def test_a_long_pair_offers_the_stricter_threshold_as_one_click(studio):
    result, *_ = studio.verify(ex("ls405_a.wav"), ex("ls3240_a.wav"), DEFAULT, None)   # ~4 s of words each
    has_long = "long_pairs" in (studio.models.calibration(DEFAULT) or {})
    assert ("stricter_threshold" in result) == has_long
    if has_long:
        t = result["stricter_threshold"]
        # offered only where it is stricter than the threshold in use (the session-37 default's 1.88 is not, at 1.892)
        assert studio.stricter_button(result)["visible"] is (t > result["threshold"])
        low, *_ = studio.redecide(result, round(t - 0.5, 2))        # a user who lowered the slider
        assert low["stricter_threshold"] == t and studio.stricter_button(low)["visible"] is True
        assert f"({t:.2f})" in studio.stricter_button(low)["value"] and studio.apply_stricter(low) == t
        moved, decision, *_ = studio.redecide(low, t)               # the slider's change re-decides
        assert moved["threshold"] == t and studio.stricter_button(moved)["visible"] is False
        assert f"threshold {t:.3f}" in decision
    for nothing in (None, {"score": 1.0, "threshold": 0.5}):
        assert studio.stricter_button(nothing)["visible"] is False and studio.apply_stricter(nothing) == gr.skip()


@needs_trained
def test_verify_examples_decide_correctly(studio):
    scores = {}
    for a, b, label in al.VERIFY_EXAMPLES:
        result = studio.verify_example(ex(a), ex(b))[0]
        scores[label] = result["score"]
        assert result["same_speaker"] == label.startswith("Same"), (label, result)
    same = [s for k, s in scores.items() if k.startswith("Same")]
    diff = [s for k, s in scores.items() if k.startswith("Different")]
    assert min(same) > max(diff)


def test_examples_and_api_decide_at_the_sliders_threshold(studio):
    """A cached example (no threshold) and the browser (the slider's value) decide at, and print, one number: the
    calibrated threshold as the slider shows it. (The stored 1.79854 once printed as 1.798 beside a slider at 1.799.)"""
    t = studio.threshold_slider()["value"]
    assert t == round(studio.models.threshold(None), 3)
    a, b, _ = al.VERIFY_EXAMPLES[0]
    result, decision, _, _ = studio.verify_example(ex(a), ex(b))
    assert result["threshold"] == t and f"threshold {t:.3f}" in decision
    assert studio.verify(ex(a), ex(b), None, t)[0] == result


def test_each_clip_says_in_how_many_parts_it_was_scored(studio, clips):
    """A checkpoint that scores in parts (rules 45 and 48) cuts a clip with >= 4 s of words: the result says into how
    many parts, and the score is the mean over their pairs, as the library's score() gives it."""
    from speaker_core.audio import load_clip, word_parts
    model = studio.models.get(None)
    pairs = [(ex(a), ex(b)) for a, b, _ in al.VERIFY_EXAMPLES] + [(clips["long"], ex("so0049_b.wav"))]
    seen = set()
    for a, b in pairs:
        result, _, _, facts = studio.verify(a, b)
        loaded = [load_clip(p, max_seconds=studio.settings.max_seconds) for p in (a, b)]
        for c, clip in zip(result["clips"], loaded):
            want = len(word_parts(clip.wave, model.parts, model.part_cut)) if model.parts else 1
            assert c["parts"] == want
            seen.add(want > 1)
        assert ("parts)</small>" in facts) == any(c["parts"] > 1 for c in result["clips"])
        assert abs(result["score"] - round(model.score(*loaded), 4)) < 1e-4
    assert seen == ({True, False} if model.parts else {False})   # the 6 s of the long clip are cut in two


def test_a_long_pair_is_explained_with_long_calibration_pairs(studio):
    """Each clip reports how long its words last; a pair whose clips both hold >= 3 s of them is read against
    the checkpoint's long calibration pairs when it has them (the shipped ones do), a shorter pair against all."""
    has_long = "long_pairs" in studio.models.calibration(None)
    seen = set()
    for a, b, _ in al.VERIFY_EXAMPLES:
        result, decision, plot, _ = studio.verify_example(ex(a), ex(b))
        speech = [c["speech_s"] for c in result["clips"]]
        assert result["min_speech_s"] == min(speech)
        assert all(0 < x <= c["duration_s"] for x, c in zip(speech, result["clips"]))
        long = result["min_speech_s"] >= 3.0
        seen.add(long)
        assert ("long-pair" in decision) == (long and has_long), (a, b, result["min_speech_s"])
        # moving the threshold re-decides with the same explanation
        assert ("long-pair" in studio.redecide(result, result["threshold"] + 0.1)[1]) == (long and has_long)
    assert seen == {True, False}   # the examples hold both kinds
    if TRAINED and not os.environ.get("SPEAKER_TEST_CHECKPOINTS"):
        assert has_long


@pytest.mark.parametrize("key, message", [
    ("silent", "silent"), ("hiss", "no speech"), ("loud_hiss", "steady sound"), ("tone", "steady sound"),
    ("short", "at least"), ("corrupt", "Could not decode"),
    ("text", "Could not decode"), ("huge", "limit is"), ("empty", "empty")])
def test_verify_bad_audio_is_a_clear_error(studio, clips, key, message):
    with pytest.raises(gr.Error, match=message) as e:
        studio.verify(clips[key], ex("so0049_b.wav"))
    assert "Clip A" in str(e.value) and "Traceback" not in str(e.value)


@pytest.mark.parametrize("before", ["faint", "zeros"])
def test_speech_after_the_used_seconds_is_explained(studio, tmp_path, before):
    """Only the first max_seconds of a clip are used: when the words come after them, the refusal says so, and the
    same audio within the limit is scored; a short clip refused as no speech gets no such note."""
    wave, sr = sf.read(EX / "so0049_a.wav", dtype="float32")
    n = int((studio.settings.max_seconds + 1) * sr)
    lead = np.random.default_rng(0).normal(0, 0.001, n).astype(np.float32) if before == "faint" else np.zeros(n, np.float32)
    sf.write(tmp_path / "late.wav", np.concatenate([lead, wave]), sr)
    with pytest.raises(gr.Error, match=r"Only the first 6 s of this 11 s recording are used: if the speech comes later"):
        studio.verify(str(tmp_path / "late.wav"), ex("so0049_b.wav"))
    sf.write(tmp_path / "soon.wav", np.concatenate([lead[: sr], wave]), sr)
    assert "score" in studio.verify(str(tmp_path / "soon.wav"), ex("so0049_b.wav"))[0]
    sf.write(tmp_path / "faint.wav", lead[: 3 * sr], sr)
    with pytest.raises(gr.Error) as e:
        studio.verify(str(tmp_path / "faint.wav"), ex("so0049_b.wav"))
    assert "Only the first" not in str(e.value)


def test_the_same_recording_twice_is_flagged(studio, tmp_path):
    """Comparing a recording with itself (here a FLAC copy of the WAV) scores at the top whatever the voice: the
    result says so. Two different recordings of one speaker get no such note."""
    wave, sr = sf.read(EX / "so0049_a.wav", dtype="float32")
    sf.write(tmp_path / "copy.flac", wave, sr)
    result, _, _, facts = studio.verify(ex("so0049_a.wav"), str(tmp_path / "copy.flac"))
    assert any(w.startswith("B: copy.flac: the same recording as clip A") for w in result["warnings"])
    assert "the same recording as clip A" in facts
    other = studio.verify(ex("so0049_a.wav"), ex("so0049_b.wav"))[0]
    assert not any("same recording" in w for w in other["warnings"])


def test_verify_missing_audio(studio):
    with pytest.raises(gr.Error, match="Clip A: no audio"):
        studio.verify(None, ex("so0049_b.wav"))
    with pytest.raises(gr.Error, match="Clip B: no audio"):
        studio.verify(ex("so0049_a.wav"), None)
    with pytest.raises(gr.Error, match="missing"):
        studio.verify("/nonexistent/file.wav", ex("so0049_b.wav"))


def test_verify_quality_warnings(studio, clips):
    result = studio.verify(clips["long"], clips["clipped"])[0]
    warnings = " | ".join(result["warnings"])
    assert "only the first 6 s were used" in warnings
    assert "clipped" in warnings
    assert result["clips"][0]["truncated"] and result["clips"][0]["duration_s"] == 6.0
    result = studio.verify(clips["quiet"], ex("so0049_b.wav"))[0]
    assert any("very quiet" in w for w in result["warnings"])
    result = studio.verify(clips["noisy"], ex("so0049_b.wav"))[0]
    assert any("steady noise" in w for w in result["warnings"])
    assert not studio.verify(ex("so0049_a.wav"), ex("so0049_b.wav"))[0]["warnings"]


@pytest.mark.skipif(not TRAINED, reason="no shipped checkpoint")
def test_bundled_clips_are_from_dev_speakers(studio):
    """Examples and reference clips must come from speakers the shipped model never trained on (for a fusion: none of
    its members)."""
    model = studio.models.get(None)
    parts = [m for m, _ in getattr(model, "members", [])] or [model]
    devs = [set((m.meta.get("data") or {}).get("dev_speakers") or []) for m in parts]
    if not all(devs):
        pytest.skip("the checkpoint does not list its dev speakers")
    dev = set.intersection(*devs)
    rows = [line.split("|") for line in (ROOT / "assets" / "ATTRIBUTION.md").read_text().splitlines()
            if line.startswith("| examples/") or line.startswith("| reference/")]
    assert len(rows) == 8 + 24
    speakers = {f"{r[2].strip()}/{r[3].strip()}" for r in rows}
    assert speakers <= dev, speakers - dev
    shipped = {p.relative_to(ROOT / "assets").as_posix() for p in (ROOT / "assets").rglob("*")
               if p.suffix in (".wav", ".flac")}
    assert shipped == {r[1].strip() for r in rows}  # every shipped clip is attributed


# -------------------------------------------------------------------------------- enroll & identify
def test_enroll_identify_delete_flow(studio, clips):
    state = None
    res, table, status, state = studio.enroll("Ada", refs("librispeech-1578")[:2], None, False,
                                              None, state)
    assert res["speaker"] == "Ada" and res["clips"] == 2 and "Ada" in table and "Enrolled" in status
    res, table, status, state = studio.enroll("ada", None, refs("librispeech-1578")[2], True,
                                              None, state)
    assert res["clips"] == 3 and "Added 1 clip" in status
    res, *_, state = studio.enroll("Bob", refs("speechocean-9624")[:2], None, False, None, state)
    assert [r["name"] for r in studio.list_speakers(state)[0]] == ["Ada", "Bob"]

    result, verdict, bars, query, state = studio.identify(refs("speechocean-9624")[2], None,
                                                          -1e6, 5, state)
    assert [r["speaker"] for r in result["ranking"]][0] in ("Ada", "Bob")
    assert result["speaker"] == result["ranking"][0]["speaker"]  # a threshold below every score accepts
    assert isinstance(query, Query) and "Top 2 matches" in bars
    unknown, verdict, *_ = studio.identify(refs("speechocean-9624")[2], None, result["score"] + 0.01, 5, state)
    assert unknown["speaker"] is None and "Unknown speaker" in verdict
    assert unknown["score"] == unknown["ranking"][0]["score"] < unknown["threshold"]

    status, table, state = studio.rename_speaker("bob", "<i>Bobby</i>", state)
    assert "Renamed <b>bob</b> to <b>&lt;i&gt;Bobby&lt;/i&gt;</b>" in status and "&lt;i&gt;Bobby" in table
    with pytest.raises(gr.Error, match="already enrolled"):
        studio.rename_speaker("<i>Bobby</i>", "ADA", state)
    with pytest.raises(gr.Error, match="Choose a speaker"):
        studio.rename_speaker(None, "X", state)
    studio.rename_speaker("<i>Bobby</i>", "Bob", state)
    status, table, state = studio.delete_speaker("bob", state)
    assert "Deleted" in status and "Bob" not in table
    with pytest.raises(gr.Error, match="No speaker named"):
        studio.delete_speaker("Bob", state)
    with pytest.raises(gr.Error, match="Tick"):
        studio.clear_gallery(False, state)
    assert len(studio.gallery(state)) == 1
    status, table, state = studio.clear_gallery(True, state)
    assert "1 speaker deleted" in status and "No speakers enrolled" in table
    with pytest.raises(gr.Error, match="empty"):
        studio.identify(refs("speechocean-9624")[2], None, 0.5, 5, state)


@needs_trained
def test_identify_finds_the_right_speaker(studio):
    state = None
    for spk in ["librispeech-1578", "speechocean-9624", "cv-fa-54db74ed", "cv-tw-a84d1065"]:
        *_, state = studio.enroll(spk, refs(spk)[:2], None, False, None, state)
    has_prints = "voiceprints" in studio.models.calibration(None)
    for spk in ["librispeech-1578", "speechocean-9624", "cv-fa-54db74ed", "cv-tw-a84d1065"]:
        result, decision, *_ = studio.identify(refs(spk)[2], None, None, 5, state)
        assert result["ranking"][0]["speaker"] == spk
        assert not any("enrolled clips" in w for w in result["warnings"])
        # the score is read against the checkpoint's clip-against-voiceprint trials (the shipped ones have them)
        assert ("3-clip voiceprints of held-out speakers" in decision) == has_prints
    if TRAINED and not os.environ.get("SPEAKER_TEST_CHECKPOINTS"):
        assert has_prints


def test_one_recording_enrolled_under_two_names_is_noted(studio):
    """The same audio enrolled for a second person is added with a note naming the first; other clips get none."""
    *_, state = studio.enroll("Ann", refs("speechocean-9624")[:1], None, False, None, None)
    res, _, status, state = studio.enroll("Bea", refs("speechocean-9624")[:2], None, False, None, state)
    noted = [w for w in res["warnings"] if "enrolled for Ann" in w]
    assert res["clips"] == 2 and len(noted) == 1 and noted[0].startswith("Clip 1 ")
    res, *_ = studio.enroll("Cy", refs("librispeech-1578")[:1], None, False, None, state)
    assert not any("enrolled for" in w for w in res["warnings"])


def test_identifying_an_enrolled_recording_says_so(studio, tmp_path):
    """A query that is one of the enrolled clips (here a FLAC copy of it) matches itself: the answer says so."""
    *_, state = studio.enroll("O'Brien", refs("speechocean-9624")[:2], None, False, None, None)
    wave, sr = sf.read(refs("speechocean-9624")[1], dtype="float32")
    sf.write(tmp_path / "again.flac", wave, sr)
    result, *_ = studio.identify(str(tmp_path / "again.flac"), None, None, 5, state)
    assert "this recording is one of O'Brien's enrolled clips" in " ".join(result["warnings"])


@needs_trained
def test_enrollment_flags_a_clip_that_does_not_match_the_others(studio):
    state = None
    # one speaker's clips agree: no note
    res, _, status, state = studio.enroll("Consistent", refs("speechocean-9624")[:3], None, False, None, state)
    assert len(res["consistency"]) == 3 and all(c["score"] >= res["threshold"] for c in res["consistency"])
    assert "under the threshold" not in status
    # another person's clip added later scores low against the stored ones, is kept, and the note says so
    res, _, status, state = studio.enroll("Consistent", [refs("librispeech-1578")[0]], None, True, None, state)
    assert res["clips"] == 4 and res["consistency"][0]["score"] < res["threshold"]
    assert "against Consistent&#x27;s other clips, under the threshold" in status or \
        "against Consistent's other clips, under the threshold" in status
    # two clips of two people: one note about the pair
    res, _, status, state = studio.enroll("Pair", [refs("speechocean-9624")[0], refs("librispeech-1578")[0]],
                                          None, False, None, state)
    low = [w for w in res["warnings"] if "under the threshold" in w]
    assert len(low) == 1 and "against each other" in low[0]
    # a single clip has nothing to be compared with
    res, *_ = studio.enroll("Single", refs("cv-tw-a84d1065")[:1], None, False, None, state)
    assert res["consistency"] == [{"clip": res["consistency"][0]["clip"], "score": None}]


@pytest.mark.parametrize("name, message", [
    ("", "Enter a speaker name"), ("   ", "Enter a speaker name"), (None, "Enter a speaker name"),
    ("x" * 65, "too long"), ("bad\x00name", "control"), ("rtl\u202eevil", "control")])
def test_enroll_bad_names(studio, name, message):
    with pytest.raises(gr.Error, match=message):
        studio.enroll(name, [ex("so0049_a.wav")], None, False, None, None)


def test_enroll_duplicate_and_html_names(studio):
    name = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    res, table, status, state = studio.enroll(name, [ex("so0049_a.wav")], None, False, None, None)
    assert res["speaker"] == name  # stored as typed...
    for html_out in (table, status):  # ...but always escaped when displayed
        assert "<script>" not in html_out and "<img" not in html_out
        assert "&lt;script&gt;" in html_out
    with pytest.raises(gr.Error, match="already enrolled") as e:
        studio.enroll(name.upper(), [ex("so0049_b.wav")], None, False, None, state)
    assert "<script>" not in str(e.value)  # error messages are escaped too
    with pytest.raises(gr.Error, match="No speaker named"):
        studio.enroll("Nobody", [ex("so0049_b.wav")], None, True, None, state)
    long_ok = "N" * 64
    res = studio.enroll(long_ok, [ex("so0049_b.wav")], None, False, None, state)[0]
    assert res["speaker"] == long_ok
    assert studio.gallery(state).speakers()[0].clips == 1


def test_the_same_clip_counts_once_in_a_voiceprint(studio, tmp_path):
    """A file uploaded twice (or again later, even in another container) is one clip, with a note saying so."""
    import shutil
    import soundfile as sf
    copy = tmp_path / "copy.flac"
    wave, sr = sf.read(ex("so0049_a.wav"), dtype="float32")
    sf.write(copy, wave, sr)                                       # the same audio as FLAC
    res, _, status, state = studio.enroll("Ann", [ex("so0049_a.wav"), str(copy)], None, False, None, None)
    assert res["clips"] == 1 and res["added"] == 1
    assert any("Clip 2 (copy.flac): the same audio as clip 1" in w for w in res["warnings"]), res["warnings"]
    assert "Enrolled from 1 clip:" in status
    with pytest.raises(gr.Error, match="already in ANN's voiceprint: nothing was added"):
        studio.enroll("ANN", [ex("so0049_a.wav")], None, True, None, state)   # names match regardless of case
    shutil.copy(ex("so0049_b.wav"), tmp_path / "b.wav")
    res = studio.enroll("Ann", [str(copy), str(tmp_path / "b.wav")], None, True, None, state)[0]
    assert res["added"] == 1 and res["clips"] == 2
    assert any("a clip already in Ann's voiceprint" in w for w in res["warnings"]), res["warnings"]
    # another speaker may hold the same clip (a mix-up the gallery table shows), and halves of one take are no repeat
    assert studio.enroll("Bob", [ex("so0049_b.wav")], None, False, None, state)[0]["clips"] == 1
    sf.write(tmp_path / "h1.wav", wave[: len(wave) // 2], sr)
    sf.write(tmp_path / "h2.wav", wave[len(wave) // 2:], sr)
    assert studio.enroll("Cy", [str(tmp_path / "h1.wav"), str(tmp_path / "h2.wav")], None, False, None,
                         state)[0]["clips"] == 2


def test_enroll_bad_clip_rejects_whole_enrollment(studio, clips):
    *_, state = studio.enroll("Keep", [ex("so0049_a.wav")], None, False, None, None)
    before = studio.gallery(state).export_dict()["speakers"]
    for bad in ("silent", "corrupt", "short", "huge"):
        with pytest.raises(gr.Error, match="Clip 2"):
            studio.enroll("New", [ex("so0049_b.wav"), clips[bad]], None, False, None, state)
        with pytest.raises(gr.Error):
            studio.enroll("Keep", [clips[bad]], None, True, None, state)
    with pytest.raises(gr.Error, match="at least one clip"):
        studio.enroll("New", [], None, False, None, state)
    with pytest.raises(gr.Error, match="At most"):
        studio.enroll("New", [ex("so0049_b.wav")] * (al.MAX_ENROLL_CLIPS + 1), None, False,
                      None, state)
    assert studio.gallery(state).export_dict()["speakers"] == before


def test_sessions_are_private(studio):
    *_, s1 = studio.enroll("Only-in-one", [ex("so0049_a.wav")], None, False, None, None)
    _, s2 = studio.list_speakers(None)
    assert [r["name"] for r in studio.list_speakers(s1)[0]] == ["Only-in-one"]
    assert studio.list_speakers(s2)[0] == []


def test_shared_file_gallery_persists(tmp_path, studio):
    settings = Settings(checkpoint_dir=studio.settings.checkpoint_dir,
                        gallery_path=str(tmp_path / "g.db"))
    s1 = Studio(settings)
    s1.models = studio.models  # reuse the loaded model
    res, table, status, state = s1.enroll("Persist", [ex("so0049_a.wav")], None, False, None, None)
    assert state is None  # the shared gallery is not session state
    s1.shared_gallery.close()
    s2 = Studio(settings)
    assert [r["name"] for r in s2.list_speakers(None)[0]] == ["Persist"]
    s2.shared_gallery.close()



def test_a_gallery_enrolled_on_the_command_line_is_the_apps(tmp_path, studio):
    """`python -m speaker_core enroll` labels voiceprints as the app does, so the app identifies from its file."""
    from speaker_core.__main__ import main

    db = tmp_path / "cli.db"
    path = studio.models.path(DEFAULT)
    assert main(["enroll", "From CLI", str(ex("so0049_a.wav")), "--gallery", str(db), "--model", str(path)]) == 0
    s = Studio(Settings(checkpoint_dir=studio.settings.checkpoint_dir, gallery_path=str(db)))
    s.models = studio.models  # reuse the loaded model
    result, *_ = s.identify(ex("so0049_b.wav"), None, -100.0, 3, None)
    assert result["speaker"] == "From CLI"
    s.shared_gallery.close()
    bad = tmp_path / "not-a-gallery.db"
    bad.write_bytes(b"not sqlite" * 20)
    with pytest.raises(GalleryError, match="Cannot open the gallery file"):
        Studio(Settings(checkpoint_dir=studio.settings.checkpoint_dir, gallery_path=str(bad)))
    assert bad.read_bytes() == b"not sqlite" * 20


# -------------------------------------------------------------------------------- export / import
def test_export_import_and_hostile_imports(studio, tmp_path):
    *_, state = studio.enroll("Exp", [ex("so0049_a.wav")], None, False, None, None)
    path, status, state = studio.export_gallery(state)
    assert Path(path).is_file() and "biometric" in status
    doc = json.loads(Path(path).read_text())
    assert doc["speakers"][0]["name"] == "Exp"

    status, table, fresh = studio.import_gallery(path, False, None, None)
    assert "Imported 1 speaker" in status and "Exp" in table
    with pytest.raises(gr.Error, match="already enrolled"):
        studio.import_gallery(path, False, None, fresh)
    before = studio.gallery(fresh).export_dict()["speakers"]

    hostile = {
        "not_json.json": "{not json",
        "nan.json": Path(path).read_text().replace("0.", "NaN, 0.", 1),
        "script.json": json.dumps({**doc, "speakers": [{**doc["speakers"][0],
                                                        "name": "\u0000<script>"}]}),
        "wrong_dim.json": json.dumps({**doc, "dim": 3}),
        "other_model.json": json.dumps({**doc, "model": "someone-else@123"}),
        "binary.json": None,
    }
    for fname, text in hostile.items():
        p = tmp_path / fname
        if text is None:
            p.write_bytes(bytes(range(256)) * 10)
        else:
            p.write_text(text)
        for replace in (False, True):
            with pytest.raises(gr.Error):
                studio.import_gallery(str(p), replace, None, fresh)
            assert studio.gallery(fresh).export_dict()["speakers"] == before
    with pytest.raises(gr.Error, match="Choose a gallery file"):
        studio.import_gallery(None, False, None, fresh)
    with pytest.raises(gr.Error, match="nothing to export"):
        studio.export_gallery(None)


# -------------------------------------------------------------------------------- voice map
def test_voice_map(studio):
    fig, png, info, state = studio.voice_map(False, None, None, None)  # nothing at all
    assert info["points"] == 0 and Path(png).is_file()
    *_, state = studio.enroll("Mapped", refs("librispeech-40"), None, False, None, None)
    *_, query, state = studio.identify(refs("librispeech-40")[0], None, None, 3, state)
    fig, png, info, state = studio.voice_map(False, None, state, query)
    assert info["method"] == "pca" and info["points"] == 3 and info["query"] is True
    assert Path(png).read_bytes()[:4] == b"\x89PNG"
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "Mapped" in legend and "latest query" in legend
    # with the reference set: 27 points -> UMAP
    fig, png, info, state = studio.voice_map(True, None, state, query)
    assert info["points"] == 3 + 24 and info["method"] == "umap"
    assert len(info["speakers"]) == 9 and len(info["coords"]) == 27
    # a query from another model is not drawn
    stale = Query(query.embedding, "other@0")
    assert studio.voice_map(False, None, state, stale)[2]["query"] is False


def test_two_models_never_mix_in_one_gallery(tmp_path):
    for name in ("speakernet-m", "ecapa-small"):
        _save(tmp_path / f"{name}.pt", arch=name)
    s = Studio(Settings(checkpoint_dir=tmp_path, gallery_path=al.SESSION))
    assert s.model_choices() == ["ecapa-small", "speakernet-m"]
    # the default (the shipped fusion) is not in this folder: the selector starts on its first model
    assert api.DEFAULT_MODEL == "ecapa-speakernet-fusion" and s.default_model() == "ecapa-small"
    # no calibration in the checkpoint: the documented default threshold
    assert s.default_threshold("ecapa-small") == al.DEFAULT_THRESHOLD
    assert "no calibration" in s.model_card("ecapa-small")
    *_, state = s.enroll("Ann", [ex("so0049_a.wav")], None, False, "speakernet-m", None)
    for call in (lambda: s.enroll("Bob", [ex("so0049_b.wav")], None, False, "ecapa-small", state),
                 lambda: s.identify(ex("so0049_b.wav"), "ecapa-small", 0.5, 5, state)):
        with pytest.raises(gr.Error, match="Choose 'speakernet-m' in the model selector"):
            call()
    info = s.voice_map(False, "ecapa-small", state, None)[2]
    assert info["points"] == 0 and "not shown" in info["notes"][0]
    # a gallery export made with one model cannot be imported under the other
    path = s.export_gallery(state)[0]
    with pytest.raises(gr.Error, match="Nothing was imported"):
        s.import_gallery(path, True, "ecapa-small", None)
    r = s.verify(ex("so0049_a.wav"), ex("so0981_a.wav"), "ecapa-small", None)[0]
    assert r["model"] == "ecapa-small" and r["threshold"] == al.DEFAULT_THRESHOLD


def test_another_model_without_a_threshold_uses_its_own(tmp_path):
    """An API call naming another model arrives with the slider's start value (the default model's threshold):
    it must be decided at the named model's calibrated threshold, not on the wrong scale."""
    _save(tmp_path / "ecapa-small.pt", {"calibration": {"threshold": 0.444, "eer": 0.1}})
    _save(tmp_path / "speakernet-m.pt", {"calibration": {"threshold": 0.2, "eer": 0.1}}, arch="speakernet-m")
    s = Studio(Settings(checkpoint_dir=tmp_path, gallery_path=":memory:"))
    a, b = ex("so0049_a.wav"), ex("so0981_a.wav")
    assert s.verify(a, b, "speakernet-m", 0.444)[0]["threshold"] == 0.2          # the client's fill-in
    assert s.verify(a, b, "speakernet-m", 0.5)[0]["threshold"] == 0.5            # a chosen value is kept
    assert s.verify(a, b, "ecapa-small", 0.444)[0]["threshold"] == 0.444
    s.enroll("Ann", [a], None, False, "speakernet-m", None)
    assert s.identify(b, "speakernet-m", 0.444, 5, None)[0]["threshold"] == 0.2


def test_gallery_of_a_replaced_checkpoint_asks_to_enroll_again(tmp_path):
    """A shipped checkpoint updated with new weights: its old voiceprints cannot be scored, and nothing is lost."""
    _save(tmp_path / "ecapa-small.pt", seed=0)
    db = tmp_path / "gallery.db"
    s = Studio(Settings(checkpoint_dir=tmp_path, gallery_path=db))
    s.enroll("Ann", [ex("so0049_a.wav")], None, False, None, None)
    old_id = s.models.model_id(None)
    _save(tmp_path / "ecapa-small.pt", seed=1)   # the next release: same name, other weights
    s = Studio(Settings(checkpoint_dir=tmp_path, gallery_path=db))
    assert s.models.model_id(None) != old_id
    for call in (lambda: s.enroll("Bob", [ex("so0049_b.wav")], None, False, None, None),
                 lambda: s.identify(ex("so0049_b.wav"), None, 0.5, 5, None)):
        with pytest.raises(gr.Error, match="no longer has.*enroll the speakers again"):
            call()
    assert [r.name for r in s.shared_gallery.speakers()] == ["Ann"] and s.shared_gallery.model()[0] == old_id


def test_recalibrated_checkpoint_keeps_its_gallery(tmp_path):
    """Model ids hash what embeddings depend on: re-calibrating the same weights keeps the voiceprints, new
    weights, a new embedding window, canonical edges or another edge detector do not. Galleries saved under the old whole-file id are adopted."""
    net = _untrained()
    ids = {}
    for tag, meta in (("a", {"calibration": {"threshold": 0.3}}), ("b", {"calibration": {"threshold": 0.5}}),
                      ("win", {"embedding": {"window": 2.0, "hop": 1.0}}),
                      ("edges", {"edges": {"keep": 0.2, "pad": 1.5, "db": -50.0}}),
                      ("words", {"edges": {"keep": 0.2, "pad": 1.5, "db": -50.0, "detector": "words"}})):
        d = tmp_path / tag
        d.mkdir()
        _save(d / "ecapa-small.pt", meta, net)
        ids[tag] = Studio(Settings(checkpoint_dir=d, gallery_path=al.SESSION)).models.model_id("ecapa-small")
    d = tmp_path / "other"
    d.mkdir()
    _save(d / "ecapa-small.pt", seed=1)
    ids["other"] = Studio(Settings(checkpoint_dir=d, gallery_path=al.SESSION)).models.model_id("ecapa-small")
    assert ids["a"] == ids["b"] and len({ids["a"], ids["win"], ids["edges"], ids["words"], ids["other"]}) == 5

    # a gallery (and an export) made under the old whole-file id is relabelled, not refused
    s = Studio(Settings(checkpoint_dir=tmp_path / "b", gallery_path=al.SESSION))
    legacy, new = s.models.legacy_id("ecapa-small"), s.models.model_id("ecapa-small")
    assert legacy != new
    *_, state = s.enroll("Ann", [ex("so0049_a.wav")], None, False, "ecapa-small", None)
    state.rename_model(new, legacy)                       # as written by an older version
    old_export = s.export_gallery(state)[0]
    assert json.loads(Path(old_export).read_text())["model"] == legacy
    res = s.identify(ex("so0049_b.wav"), "ecapa-small", -1.0, 5, state)[0]
    assert res["speaker"] == "Ann" and state.model()[0] == new
    state.clear()
    s.import_gallery(old_export, True, "ecapa-small", state)
    assert state.model()[0] == new and len(state) == 1


def test_silence_around_the_words_is_flagged():
    wave = al.load_clip(ex("so0049_a.wav")).wave
    # 1.5 s before and after the words, in a room whose noise (-50 dBFS) runs under the whole recording
    x = np.concatenate([np.zeros(24000), wave, np.zeros(24000)])
    x = (x + np.random.default_rng(0).normal(0, 10 ** (-50 / 20), x.size)).astype(np.float32)
    padded = al.load_clip(x, sample_rate=16000)
    notes = al.clip_warnings(padded)
    assert any("of silence before the words" in n for n in notes), notes
    assert al.clip_facts(padded, "a")["silence_before_after_s"][0] >= 1.4
    # a model that gives every clip the same edges says so instead of asking for a trim
    trims = al.clip_warnings(padded, edges={"keep": 0.2, "pad": 1.5, "db": -50.0})
    assert any("this model cuts it to 0.2 s" in n for n in trims) and not any("so trim it" in n for n in trims)
    assert not any("silence before" in n for n in al.clip_warnings(al.load_clip(wave, sample_rate=16000)))
    # a steady noise has no words: it is "mostly silence", not "silence before the words"
    hum = (0.3 * np.random.default_rng(1).standard_normal(48000)).astype(np.float32)
    notes = al.clip_warnings(al.load_clip(hum, sample_rate=16000))
    assert any("mostly silence" in n for n in notes) and not any("before the words" in n for n in notes), notes


def test_returned_files_are_pruned_and_cleanup_is_configurable(tmp_path, monkeypatch):
    import os
    import time as _time
    monkeypatch.setattr(al.tempfile, "gettempdir", lambda: str(tmp_path))
    old = al._tmp_dir()
    (old / "speaker-gallery.json").write_text("{}")
    os.utime(old, (_time.time() - 7200, _time.time() - 7200))
    fresh = al._tmp_dir(3600)
    assert fresh.exists() and not old.exists()
    assert al.Settings.from_env({"SPEAKER_KEEP_FILES_SECONDS": "120"}).delete_cache == (60, 120)
    assert al.Settings.from_env({}).delete_cache == (600, al.KEEP_FILES_SECONDS)


def test_the_example_cache_key_follows_the_app_source(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    key = al.source_digest(a, b)
    assert key == al.source_digest(a, b) and len(key) == 10
    b.write_text("y = 3\n")   # another output layout must not reuse results cached by the old one
    assert al.source_digest(a, b) != key


def test_an_unknown_voice_is_offered_for_enrollment():
    assert al.Studio.enroll_offer({"speaker": None, "score": 0.1, "ranking": []})["visible"] is True
    assert al.Studio.enroll_offer({"speaker": "Ada", "score": 3.0, "ranking": []})["visible"] is False
    assert al.Studio.enroll_offer(None)["visible"] is False
    clip = str(EX / "so0049_a.wav")
    assert al.Studio.clip_to_enroll(clip, None) == [clip]
    assert al.Studio.clip_to_enroll(clip, [str(EX / "so0049_b.wav"), clip]) == [str(EX / "so0049_b.wav"), clip]
    with pytest.raises(gr.Error, match="Add a clip to identify first"):
        al.Studio.clip_to_enroll(None, [clip])


def test_a_fusion_cuts_silence_only_when_every_member_does():
    from types import SimpleNamespace as NS
    words = {"keep": 0.2, "pad": 1.5, "db": -50.0, "detector": "words"}
    assert al.cut_edges(NS(edges=words)) == words and al.cut_edges(NS(edges=None)) is None
    both = NS(edges=None, members=[(NS(edges=dict(words)), 0.7), (NS(edges=dict(words)), 0.3)])
    assert al.cut_edges(both) == words
    mixed = NS(edges=None, members=[(NS(edges=None), 0.7), (NS(edges=dict(words)), 0.3)])
    assert al.cut_edges(mixed) is None
