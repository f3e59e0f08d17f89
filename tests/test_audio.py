import numpy as np
import pytest
import soundfile as sf

from speaker_core import audio
from speaker_core.audio import (AudioFileError, EmptyAudioError, NonFiniteAudioError, SilentAudioError,
                                TooShortError, load_audio, load_clip)


def test_reads_wav_flac_ogg_and_resamples(tmp_path, tone):
    for fmt, sr in (("wav", 16000), ("flac", 22050), ("ogg", 48000)):
        p = tmp_path / f"x.{fmt}"
        n = int(len(tone) * sr / 16000)
        data = np.interp(np.arange(n) * 16000 / sr, np.arange(len(tone)), tone).astype(np.float32)
        sf.write(p, np.stack([data, data], 1), sr)  # stereo in, mono out
        w = load_audio(p)
        assert w.dtype == np.float32 and w.ndim == 1
        assert abs(w.size - 32000) <= 2


def test_reads_mp3_from_pool():
    from conftest import SPEECH

    mp3 = next(SPEECH.glob("common-voice-fa/*/*.mp3"), None)
    if mp3 is None:
        pytest.skip("speech pool not present")
    clip = load_clip(mp3)
    assert clip.orig_sample_rate != 16000 and clip.sample_rate == 16000 and clip.duration > 0.5


def test_16k_input_is_not_copied(tone):
    assert audio.to_mono_16k(tone, 16000) is tone


def test_int16_and_gradio_tuple(tone):
    pcm = (tone * 32767).astype(np.int16)
    w = load_audio((16000, pcm))
    assert np.allclose(w, tone, atol=1e-3)


def test_missing_corrupt_and_non_audio_files(tmp_path):
    with pytest.raises(AudioFileError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    with pytest.raises(AudioFileError, match="Could not decode"):
        load_audio(bad)
    txt = tmp_path / "notes.mp3"
    txt.write_text("<script>alert(1)</script> this is not audio" * 20)
    with pytest.raises(AudioFileError):
        load_audio(txt)
    with pytest.raises(AudioFileError):
        load_audio(tmp_path)  # a directory
    with pytest.raises(AudioFileError):
        load_audio(None)


def test_empty_audio(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(EmptyAudioError):
        load_audio(p)
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(EmptyAudioError):
        load_audio(tmp_path / "zero.wav")
    with pytest.raises(EmptyAudioError):
        load_audio(np.zeros(0, np.float32), sample_rate=16000)


def test_non_finite(tone):
    x = tone.copy()
    x[100] = np.nan
    with pytest.raises(NonFiniteAudioError):
        load_audio(x, sample_rate=16000)
    x[100] = np.inf
    with pytest.raises(NonFiniteAudioError):
        load_audio(x, sample_rate=16000)


def test_too_short(tone):
    with pytest.raises(TooShortError, match="0.10 s"):
        load_audio(tone[:1600], sample_rate=16000)
    n = int(audio.MIN_DURATION * 16000)
    assert load_audio(tone[:n], sample_rate=16000).size == n


def test_silence(tone):
    with pytest.raises(SilentAudioError):
        load_audio(np.zeros(32000, np.float32), sample_rate=16000)
    with pytest.raises(SilentAudioError):
        load_audio(np.random.default_rng(0).normal(0, 1e-5, 32000).astype(np.float32), sample_rate=16000)


def test_errors_are_value_errors():
    assert issubclass(audio.AudioError, ValueError)


def test_clip_facts_and_truncation(tone):
    x = np.concatenate([np.zeros(16000, np.float32), tone, np.ones(1600, np.float32)])
    c = load_clip(x, sample_rate=16000, max_seconds=2.5)
    assert c.truncated and c.duration == 2.5 and c.orig_duration == pytest.approx(3.1)
    assert 0.3 < c.speech_fraction < 0.8
    c2 = load_clip(np.concatenate([tone, np.ones(1600, np.float32)]), sample_rate=16000)
    assert c2.clipped_fraction > 0.04
