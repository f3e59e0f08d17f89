"""Audio in: read a file or take a waveform, downmix to mono, resample to 16 kHz, and reject bad input.

Every failure raises a subclass of `AudioError` (itself a `ValueError`) whose message can be shown to a user.

>>> import numpy as np
>>> clip = load_clip((np.sin(np.arange(16000) / 5).astype("float32") * 0.3, 16000))
>>> round(clip.duration, 2), clip.sample_rate
(1.0, 16000)
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SAMPLE_RATE = 16000
# Below a quarter second the pooling sees fewer than 25 frames (NeMo itself fails at one frame) and the
# embedding says more about the phone than the voice. The app warns well above this (under 1.5 s).
MIN_DURATION = 0.25
# A clip whose loudest 25 ms frame stays under -60 dBFS carries no usable signal.
SILENCE_DBFS = -60.0
MAX_FILE_BYTES = 200 * 1024 * 1024
# A clip with under 5 % active frames whose loudest frame stays under -40 dBFS is faint noise, not speech: two
# such clips embed alike and would "match". The energy detector alone would also flag continuous speech or noisy
# recordings, so the level decides too. `require_speech` refuses them wherever a clip is scored or enrolled.
NO_SPEECH_FRACTION = 0.05
FAINT_DBFS = -40.0
# Speech rises and falls; a steady tone, mains hum, DC offset or stationary noise does not, and two of them embed
# alike (two sine tones scored 14.9 against the session-24 default's threshold of 1.80). Level spread = 99th minus 10th
# percentile of the 25 ms frame levels, the larger of the waveform's and its pre-emphasised copy's. Measured: over
# the 5,630 clips of the speech pool the smallest is 2.3 dB (1 s commands drowned in noise); DC, tones and hum
# give 0.0 dB, 3 s of white noise 1.0-1.3 dB. `require_speech` refuses a clip under STEADY_DB.
STEADY_DB = 1.6
# Where a person's clip is scored (the app, `verify`, the command line), only its first 30 s are used.
MAX_SECONDS = 30.0
# Under 4 kHz sampling nothing above 2 kHz survives: no formants to tell voices apart (telephone audio is 8 kHz).
MIN_SAMPLE_RATE = 4000
# canonical_edges' settings: keep 0.2 s of each edge's silence (the training clips' median edge), then 1.5 s of
# -50 dBFS noise each side (the dev padding condition, where these models were measured). Session 11 found the
# edges with active_frames ("floor"); session 12 with word_frames ("words"), which padding does not fool.
CANONICAL_EDGES = {"keep": 0.2, "pad": 1.5, "db": -50.0, "detector": "words"}
# word_frames: a frame carries words only if it is within 25 dB of the clip's loudest, on the waveform and on its
# pre-emphasised copy (the second ignores low-frequency rumble and brown noise, the first hiss).
WORDS_RANGE_DB = 25.0
PRE_EMPHASIS = 0.97


class AudioError(ValueError):
    """Base class for every bad-input error raised by this module."""


class AudioFileError(AudioError):
    """The file is missing, unreadable, corrupt or not audio."""


class EmptyAudioError(AudioError):
    """The audio holds no samples."""


class NonFiniteAudioError(AudioError):
    """The audio holds NaN or infinite samples."""


class TooShortError(AudioError):
    """The clip is shorter than MIN_DURATION."""


class SilentAudioError(AudioError):
    """The clip is digital silence or near it."""


class NoSpeechError(AudioError):
    """The clip holds only faint noise (`require_speech`)."""


@dataclass
class Clip:
    wave: np.ndarray          # (N,) float32, mono, 16 kHz
    orig_sample_rate: int
    duration: float           # seconds kept (after truncation)
    orig_duration: float      # seconds in the source
    truncated: bool
    speech_fraction: float    # share of 25 ms frames an energy detector calls active
    clipped_fraction: float   # share of samples at or above 0.999 full scale
    edge_silence: tuple[float, float] = (0.0, 0.0)   # seconds before the first and after the last word frame
    sample_rate: int = SAMPLE_RATE

    @property
    def speech_seconds(self) -> float:
        """``speech_seconds`` of the wave, from the edge silence measured when the clip was loaded."""
        return _words_span(self.wave.size, self.edge_silence)


def read_file(path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 (N, C) plus its rate; only the first ``max_seconds`` when given."""
    data, sr, _ = read_head(path, max_seconds)
    return data, sr


def read_head(path, max_seconds: float | None = None) -> tuple[np.ndarray, int, float]:
    """Decode at most the first ``max_seconds`` of a file: (float32 (N, C), rate, whole file's seconds).

    WAV, FLAC, OGG/Opus and MP3 go through libsndfile. Anything else it cannot open (phone recordings in
    M4A/AAC, WebM, MP4 video) goes through PyAV's bundled FFmpeg, already resampled to 16 kHz (channels
    kept). The bound matters for compressed uploads: 20 MB of MP3 can hold 1.5 hours, gigabytes once decoded.
    """
    p = Path(os.fspath(path))
    if not p.exists():
        raise AudioFileError(f"Audio file not found: {p.name}")
    if not p.is_file():
        raise AudioFileError(f"Not a regular file: {p.name}")
    size = p.stat().st_size
    if size == 0:
        raise EmptyAudioError(f"The file {p.name} is empty (0 bytes).")
    if size > MAX_FILE_BYTES:
        raise AudioFileError(f"The file {p.name} is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
    try:
        with sf.SoundFile(str(p)) as f:
            sr, total = int(f.samplerate), int(f.frames)
            n = total if max_seconds is None else min(total, int(np.ceil(max_seconds * sr)))
            data = f.read(frames=n, dtype="float32", always_2d=True)
        return data, sr, total / sr
    except Exception as e:  # libsndfile raises several types for corrupt or foreign data
        first = (str(e) or type(e).__name__).splitlines()[0].replace(str(p), p.name)[:200]
        if "does not exist" in first:   # libsndfile's generic reply to foreign bytes; the file is there
            first = "unrecognised or corrupt data"
    try:
        return _read_with_av(p, max_seconds)
    except AudioError:
        raise
    except Exception:  # PyAV missing, or FFmpeg cannot make sense of it either
        raise AudioFileError(f"Could not decode {p.name} as audio (WAV, FLAC, OGG, MP3, M4A or WebM "
                             f"expected): {first}") from None


def file_duration(path) -> float | None:
    """Seconds of audio from the file's header (nothing decoded), or None when it cannot be opened."""
    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate if info.frames > 0 and info.samplerate > 0 else None
    except Exception:  # not a libsndfile format: ask FFmpeg (VoxCeleb2's M4A)
        pass
    try:
        import av

        with av.open(str(path), mode="r", metadata_errors="ignore") as box:
            if not box.streams.audio:
                return None
            return _av_seconds(box, box.streams.audio[0]) or None
    except Exception:
        return None


def _av_seconds(box, stream) -> float:
    """A container's audio length from its headers (0.0 when it does not say)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return box.duration / 1e6 if box.duration else 0.0


def _read_with_av(p: Path, max_seconds: float | None) -> tuple[np.ndarray, int, float]:
    import av  # optional at import time: only formats libsndfile cannot read need it

    with av.open(str(p), mode="r", metadata_errors="ignore") as box:
        if not box.streams.audio:
            raise AudioFileError(f"Could not decode {p.name} as audio: it has no audio track.")
        stream = box.streams.audio[0]
        # keep the channels: FFmpeg's own stereo-to-mono mix adds 3 dB, and to_mono_16k averages them
        to16k = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
        limit = None if max_seconds is None else int(np.ceil(max_seconds * SAMPLE_RATE))
        chunks, got = [], 0
        for frame in box.decode(stream):
            frame.pts = None  # the resampler re-times; odd container timestamps must not stop it
            for out in to16k.resample(frame):
                chunks.append(out.to_ndarray())                   # (C, n)
                got += chunks[-1].shape[1]
            if limit is not None and got >= limit:
                break
        else:
            for out in to16k.resample(None):   # flush
                chunks.append(out.to_ndarray())
        wave = np.concatenate(chunks, axis=1).T if chunks else np.zeros((0, 1), np.float32)   # (N, C)
        total = _av_seconds(box, stream)
    if limit is not None:
        wave = wave[:limit]
    return np.ascontiguousarray(wave, dtype=np.float32), SAMPLE_RATE, max(total, len(wave) / SAMPLE_RATE)


def to_mono_16k(data, sample_rate: int) -> np.ndarray:
    """Downmix (N,) / (N, C) audio to mono and resample to 16 kHz with torchaudio. No copy when already mono 16 kHz."""
    x = np.asarray(data)
    if x.dtype != np.float32:
        if np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
        else:
            x = x.astype(np.float32)
    if x.size == 0:
        raise EmptyAudioError("The audio holds no samples.")
    if x.ndim == 2:
        # Accept (N, C) as soundfile gives and (C, N) as torchaudio gives: channels are the short axis.
        ch = x.T if x.shape[1] <= x.shape[0] else x                                   # (C, N)
        mix = ch.mean(axis=0, dtype=np.float32)
        power = np.square(ch, dtype=np.float64).mean(axis=1)                          # (C,)
        # Channels in opposite phase (a miswired microphone, some phone recorders) cancel in the mix, and the
        # clip would be refused as silent: when the mix keeps under a tenth of the loudest channel's power,
        # take that channel instead.
        if np.square(mix, dtype=np.float64).mean() < 0.1 * power.max():
            mix = np.ascontiguousarray(ch[int(np.argmax(power))], dtype=np.float32)
        x = mix
    elif x.ndim != 1:
        raise AudioError(f"Expected a 1-D or 2-D waveform, got shape {tuple(x.shape)}.")
    if x.size == 0:
        raise EmptyAudioError("The audio holds no samples.")
    if not np.isfinite(x).all():
        raise NonFiniteAudioError("The audio contains NaN or infinite samples.")
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise AudioError(f"Invalid sample rate {sample_rate}.")
    if sample_rate < MIN_SAMPLE_RATE:
        raise AudioError(f"The audio is sampled at {sample_rate} Hz, too low to carry a voice: at least "
                         f"{MIN_SAMPLE_RATE // 1000} kHz is needed (telephone audio is 8 kHz, microphones 16-48 kHz).")
    if sample_rate != SAMPLE_RATE:
        import torchaudio.functional as AF

        x = AF.resample(torch.from_numpy(np.ascontiguousarray(x)), sample_rate, SAMPLE_RATE).numpy()
    return x


def frame_db(wave: np.ndarray, frame: int = 400, hop: int = 160) -> np.ndarray:
    """Energy of 25 ms frames in dBFS (a full-scale sine reads -3 dB).

    >>> [round(float(x), 2) for x in frame_db(np.full(800, 0.5, np.float32))]
    [-6.02, -6.02, -6.02]
    """
    if wave.size < frame:
        wave = np.pad(wave, (0, frame - wave.size))
    n = 1 + (wave.size - frame) // hop
    # frames overlap: sum squares over blocks of gcd(frame, hop) samples once, then add a frame's blocks
    # (exact zeros stay exactly zero, so digital silence still reads -200 dB)
    b = math.gcd(frame, hop)
    blocks = np.square(wave[: (n - 1) * hop + frame], dtype=np.float64).reshape(-1, b).sum(axis=1)
    step, span = hop // b, frame // b
    sums = sum(blocks[j: j + step * (n - 1) + 1: step] for j in range(span))
    return 20 * np.log10(np.sqrt(sums / frame) + 1e-10)


def active_frames(wave: np.ndarray) -> np.ndarray:
    """25 ms frames (10 ms hop) clearly above the clip's own noise floor: a cheap energy VAD, not a speech model."""
    db = frame_db(wave)
    floor = np.percentile(db, 10)
    return db > max(floor + 8.0, SILENCE_DBFS + 5.0)


def word_frames(wave: np.ndarray) -> np.ndarray:
    """25 ms frames (10 ms hop) that carry the words: ``active_frames``' test plus "within 25 dB of the loudest
    frame", on the waveform and on its pre-emphasised copy alike. Stricter than ``active_frames`` (quiet word tails
    drop out), so it finds where the words start and end, not how much of a clip is speech. Unlike
    ``active_frames``, it is not fooled when quieter noise around a recording lowers the clip's floor until the
    room's own background counts as words (below: 1.5 s = 1 s added + 0.5 s of room before the tone).

    >>> r = np.random.RandomState(0)
    >>> noise = lambda seconds, db: r.standard_normal(int(seconds * 16000)) * 10 ** (db / 20)
    >>> tone = 0.3 * np.sin(2 * np.pi * 500 * np.arange(8000) / 16000)
    >>> w = np.concatenate([noise(0.5, -40), tone, noise(0.5, -40)])              # a room at -40 dBFS
    >>> padded = np.concatenate([noise(1, -60), w, noise(1, -60)]).astype(np.float32)
    >>> [round(x, 1) for x in edge_silence(padded)], [round(x, 1) for x in edge_silence(padded, "floor")]
    ([1.5, 1.5], [1.0, 1.0])
    """
    wave = np.asarray(wave, dtype=np.float32)
    pre = np.append(wave[:1], wave[1:] - PRE_EMPHASIS * wave[:-1]).astype(np.float32)
    out = None
    for x in (wave, pre):
        db = frame_db(x)
        ok = db > max(np.percentile(db, 10) + 8.0, db.max() - WORDS_RANGE_DB, SILENCE_DBFS + 5.0)
        out = ok if out is None else out & ok
    return out


DETECTORS = {"floor": active_frames, "words": word_frames}


def speech_fraction(wave: np.ndarray) -> float:
    """Share of frames that ``active_frames`` calls active."""
    return float(np.mean(active_frames(wave)))


def edge_silence(wave: np.ndarray, detector: str = "words") -> tuple[float, float]:
    """Seconds before the first and after the last frame with words (``DETECTORS[detector]``) of 16 kHz audio.

    >>> t = np.arange(16000) / 16000
    >>> w = np.concatenate([np.zeros(16000), 0.3 * np.sin(2 * np.pi * 200 * t), np.zeros(8000)]).astype(np.float32)
    >>> [round(x, 1) for x in edge_silence(w)]
    [1.0, 0.5]
    """
    return _edges_of(DETECTORS[detector](wave), wave.size)


def speech_seconds(wave: np.ndarray) -> float:
    """Seconds from the first to the last frame with words (``word_frames``) of 16 kHz audio: how long the words
    last, pauses between them included, silence and quiet noise around them not.

    >>> t = np.arange(16000) / 16000
    >>> w = np.concatenate([np.zeros(16000), 0.3 * np.sin(2 * np.pi * 200 * t), np.zeros(8000)]).astype(np.float32)
    >>> round(speech_seconds(w), 1)
    1.0
    """
    return _words_span(wave.size, edge_silence(wave))


def word_parts(wave: np.ndarray, seconds: float, cut: str = "time") -> list[np.ndarray]:
    """The clip's words (first to last word frame, as ``speech_seconds``) cut into ``floor(span / seconds)`` parts
    when that is 2 or more; otherwise the clip itself. A checkpoint with ``meta["scoring"]`` scores a pair as the
    mean over its parts' pairs (``scoring.parts_of``, rule 45), so that a long recording is scored on the scale of
    the 1-3 s pairs where its threshold was calibrated.

    ``cut="time"`` makes equal-time parts (rule 45), so a long pause can fill a part with no words. ``cut="words"``
    gives every part an equal share of the word frames (rule 48): each inner cut lies midway between two word frames.

    >>> t = np.arange(16000 * 5) / 16000
    >>> w = np.concatenate([np.zeros(8000), 0.3 * np.sin(2 * np.pi * 200 * t), np.zeros(8000)]).astype(np.float32)
    >>> [round(p.size / 16000, 2) for p in word_parts(w, 2.0)], len(word_parts(w[:16000 * 4], 2.0))
    ([2.52, 2.52], 1)
    >>> tone = w[8000:8000 + 16000 * 2]                 # 2 s of words, a 3.25 s pause, 1 s of words: 3 parts
    >>> gap = np.concatenate([tone, np.zeros(52000, np.float32), tone[:16000]])
    >>> [round(p.size / 16000, 1) for p in word_parts(gap, 2.0)]            # the middle part holds no words
    [2.1, 2.1, 2.1]
    >>> [round(p.size / 16000, 1) for p in word_parts(gap, 2.0, "words")]   # 1 s of words each, the pause split
    [1.0, 2.6, 2.6]
    """
    if cut not in ("time", "words"):
        raise ValueError(f"unknown part cut {cut!r} (expected 'time' or 'words')")
    active = DETECTORS["words"](wave)
    lead, tail = _edges_of(active, wave.size)
    k = int(_words_span(wave.size, (lead, tail)) // seconds)
    if k < 2:
        return [wave]
    start, end = int(round(lead * SAMPLE_RATE)), wave.size - int(round(tail * SAMPLE_RATE))
    cuts = np.linspace(start, end, k + 1).round().astype(int)
    if cut == "words":
        frame, hop = 400, 160   # frame_db's grid
        idx = np.flatnonzero(active)                                        # the word frames
        q = np.round(np.arange(1, k) * idx.size / k).astype(int)
        inner = ((idx[q - 1] * hop + frame) + idx[q] * hop) // 2           # midway between word frames q-1 and q
        by_words = np.concatenate([[start], np.clip(inner, start, end), [end]]).astype(int)
        if np.all(np.diff(by_words) > 0):   # fewer word frames than parts (a few clicks far apart): keep equal time
            cuts = by_words
    return [wave[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def _words_span(n: int, edges: tuple[float, float]) -> float:
    return max(0.0, n / SAMPLE_RATE - edges[0] - edges[1])


def _edges_of(active: np.ndarray, n: int) -> tuple[float, float]:
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return n / SAMPLE_RATE, 0.0
    frame, hop = 400, 160   # frame_db's grid
    return float(idx[0] * hop / SAMPLE_RATE), float(max(0.0, (n - (idx[-1] * hop + frame)) / SAMPLE_RATE))


def validate(wave: np.ndarray, min_duration: float = MIN_DURATION) -> None:
    """Raise TooShortError / SilentAudioError for 16 kHz mono audio that cannot be embedded."""
    dur = wave.size / SAMPLE_RATE
    if dur < min_duration:
        raise TooShortError(f"The clip is {dur:.2f} s long; it needs to be at least {min_duration:g} s.")
    if frame_db(wave).max() < SILENCE_DBFS:
        raise SilentAudioError("The clip is silent (no frame above -60 dBFS). Check the microphone or the file.")


def level_spread(wave: np.ndarray) -> float:
    """dB between the 99th and 10th percentile of the 25 ms frame levels, the larger of the waveform's and its
    pre-emphasised copy's (which hears speech over low hum). Speech: 2 dB or more; a steady tone: 0.

    >>> t = np.arange(32000) / 16000
    >>> tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    >>> round(level_spread(tone), 1), level_spread(tone * (t > 1)) > 20    # steady, then switched on after 1 s
    (0.0, True)
    """
    wave = np.asarray(wave, dtype=np.float32)
    pre = np.append(wave[:1], wave[1:] - PRE_EMPHASIS * wave[:-1]).astype(np.float32)
    return max(float(np.diff(np.percentile(frame_db(x), [10, 99]))[0]) for x in (wave, pre))


def require_speech(clip: "Clip") -> "Clip":
    """Raise NoSpeechError for a clip of faint noise (see NO_SPEECH_FRACTION) or a steady signal with no speech
    in it (see STEADY_DB); return the clip otherwise."""
    if clip.speech_fraction < NO_SPEECH_FRACTION and float(frame_db(clip.wave).max()) < FAINT_DBFS:
        raise NoSpeechError("almost no speech detected: the clip holds only faint noise. Record closer to the "
                            "microphone, or upload another file.")
    if level_spread(clip.wave) < STEADY_DB:
        raise NoSpeechError("no speech detected: the clip is a steady sound (a tone, hum or constant noise) whose "
                            "level never changes as speech does. Upload or record someone speaking.")
    return clip


def windows(wave: np.ndarray, window: float, hop: float, sample_rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Slices of ``window`` seconds every ``hop`` seconds, the last one flush with the end, or ``[wave]`` when the
    clip is shorter than ``window + hop`` (one window would then cover nearly all of it anyway).

    >>> [len(w) for w in windows(np.zeros(16000 * 7), 3.0, 1.5)]
    [48000, 48000, 48000, 48000]
    >>> len(windows(np.zeros(16000 * 4), 3.0, 1.5))
    1
    """
    n, h = int(round(window * sample_rate)), int(round(hop * sample_rate))
    if n <= 0 or h <= 0 or len(wave) < n + h:
        return [wave]
    starts = list(range(0, len(wave) - n + 1, h))
    if starts[-1] + n < len(wave):
        starts.append(len(wave) - n)
    return [wave[s:s + n] for s in starts]


def canonical_edges(wave: np.ndarray, keep: float = 0.2, pad: float = 1.5, db: float = -50.0,
                    detector: str = "floor", sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The same silence around every clip: each edge's silence (``edge_silence`` with ``detector``) is cut to at
    most ``keep`` seconds, then ``pad`` seconds of one fixed white-noise draw at ``db`` dBFS go before and after.
    Two recordings then differ in their words, not in how long the microphone ran around them, which shifts a
    model's scores. A clip where no words are found is only padded. The default detector is the one of
    checkpoints that do not name theirs (session 11); ``CANONICAL_EDGES`` names "words".

    >>> t = np.arange(16000) / 16000
    >>> w = np.concatenate([np.zeros(48000), 0.3 * np.sin(2 * np.pi * 200 * t), np.zeros(8000)]).astype(np.float32)
    >>> round(len(canonical_edges(w)) / 16000, 2)   # 1.5 + 0.2 + 1 s of tone + 0.2 + 1.5, to the 10 ms frame
    4.43
    >>> bool(np.array_equal(canonical_edges(w)[:100], canonical_edges(w[16000:])[:100]))   # one fixed pad
    True
    """
    wave = np.asarray(wave, dtype=np.float32)
    n, start, end = wave.size, 0, wave.size
    active = DETECTORS[detector](wave)
    if active.any():
        lead, tail = _edges_of(active, n)
        start = int(round(max(0.0, lead - keep) * sample_rate))
        end = n - int(round(max(0.0, tail - keep) * sample_rate))
    noise = _fixed_noise(int(pad * sample_rate), float(db))
    return np.concatenate([noise[0], wave[start:end], noise[1]])


@functools.lru_cache(maxsize=4)
def _fixed_noise(n: int, db: float) -> tuple[np.ndarray, np.ndarray]:
    # one draw for every clip and every run: a fresh draw per clip would itself make clips differ
    x = (np.random.RandomState(1234).standard_normal(2 * n) * 10 ** (db / 20)).astype(np.float32)
    x.flags.writeable = False
    return x[:n], x[n:]


def load_audio(source, sample_rate: int | None = None, min_duration: float = MIN_DURATION) -> np.ndarray:
    """Return validated mono 16 kHz float32 audio from a path, a `(wave, sr)` pair, or a waveform plus `sample_rate`."""
    return load_clip(source, sample_rate=sample_rate, min_duration=min_duration).wave


def load_clip(source, sample_rate: int | None = None, max_seconds: float | None = None,
              min_duration: float = MIN_DURATION) -> Clip:
    """Like `load_audio`, plus the facts an app shows about a clip. Clips over `max_seconds` are truncated."""
    if source is None:
        raise AudioFileError("No audio was given.")
    if isinstance(source, Clip):
        return source
    total = None
    if isinstance(source, (str, os.PathLike)):
        data, sr, total = read_head(source, max_seconds)
    elif isinstance(source, tuple) and len(source) == 2:
        data, sr = source
        if isinstance(data, (int, np.integer)) and not isinstance(sr, (int, np.integer)):
            sr, data = data, sr  # Gradio's numpy audio is (sample_rate, data)
    else:
        if sample_rate is None:
            raise AudioError("A raw waveform needs its sample_rate.")
        data, sr = source, sample_rate
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    wave = to_mono_16k(data, sr)
    orig = max(wave.size / SAMPLE_RATE, total or 0.0)
    truncated = max_seconds is not None and orig > max_seconds
    if truncated:
        wave = wave[: int(max_seconds * SAMPLE_RATE)]
    validate(wave, min_duration)
    return Clip(
        wave=wave,
        orig_sample_rate=int(sr),
        duration=wave.size / SAMPLE_RATE,
        orig_duration=orig,
        truncated=bool(truncated),
        speech_fraction=speech_fraction(wave),
        clipped_fraction=float(np.mean(np.abs(wave) >= 0.999)),
        edge_silence=edge_silence(wave),
    )
