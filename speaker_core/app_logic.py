"""The Gradio app's handlers: plain functions over speaker_core, testable without a browser.

`app.py` only lays out components and wires events to the methods of `Studio`. Every
handler turns bad input into a `gr.Error` with a clear message (never a traceback), and
returns plain values (JSON-able dicts, HTML strings, matplotlib figures, file paths).

Settings come from the environment (`Settings.from_env`):

- ``SPEAKER_CORE_CHECKPOINTS``: folder of .pt/.nemo checkpoints (default: ./checkpoints).
- ``SPEAKER_GALLERY_PATH``: the gallery's SQLite file (default ./gallery.db when run
  locally). ``session`` gives every browser session its own private in-memory gallery, the
  default on a Hugging Face Space (``SPACE_ID`` set). ``:memory:`` is one shared in-memory
  gallery.
- ``SPEAKER_MAX_SECONDS``: clips are truncated to this many seconds (default 30).
"""
from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import gradio as gr

from . import projection
from .api import DEFAULT_MODEL, Recognizer, available_models, load_model
from .audio import (MAX_SECONDS, NO_SPEECH_FRACTION, AudioError, Clip, NoSpeechError, SilentAudioError, file_duration,
                    frame_db, load_clip, require_speech)
from .checkpoint import CheckpointError
from .gallery import (MAX_IMPORT_BYTES, Gallery, GalleryError, display_name, earlier_copies,
                      enrollment_consistency, normalize_name, same_audio, voiceprint_of)
from .scoring import DEFAULT_THRESHOLD, calibration_samples
from .views import (decision_html, empty_html, facts_html, failed_html, gallery_html, model_card_markdown,
                    ranking_plot, score_plot, stricter_threshold, voiceprint_html)

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
EXAMPLES_DIR = ASSETS / "examples"
REFERENCE_DIR = ASSETS / "reference"

SHORT_SECONDS = 2.0         # below this, scores get noisy: warn
LOW_SPEECH_FRACTION = 0.3   # under 30 % active frames: warn "mostly silence"
QUIET_DBFS = -35.0          # loudest 25 ms frame below this: warn "very quiet"
CLIPPED_FRACTION = 0.001    # 0.1 % of samples at full scale: warn "clipped"
# Silence around the words shifts scores. On dev (session 8), 1.5 s of quiet noise before and after one clip of
# each pair dropped same-speaker scores so far that 40 % fell below the threshold (12 % without it). Dev clips
# carry 0.0-1.2 s of it (median per corpus); Common Voice clips up to 6 s.
EDGE_SILENCE_SECONDS = 2.0  # silence before + after the words: warn "trim it"
MAX_UPLOAD_MB = 20
MAX_ENROLL_CLIPS = 20
# Uploaded audio and the files the app hands out (gallery exports hold voiceprints) are deleted this long after
# they were written, and when the app stops, instead of piling up in the server's temporary folder.
KEEP_FILES_SECONDS = 3600
TOP_K = 5
SESSION = "session"


# Verify examples: (clip A, clip B, label). Both outcomes are covered.
VERIFY_EXAMPLES = [
    ("so0049_a.wav", "so0049_b.wav", "Same speaker · speechocean762 (English, L1 Mandarin)"),
    ("fa08bd_a.wav", "fa08bd_b.wav", "Same speaker · Common Voice (Persian)"),
    ("so0981_a.wav", "so2242_a.wav", "Different speakers · speechocean762"),
    ("ls405_a.wav", "ls3240_a.wav", "Different speakers · LibriSpeech"),
]


class UserError(gr.Error):
    """A gr.Error whose message is already safe to display (HTML-escaped)."""

    def __init__(self, message: str):
        super().__init__(html.escape(message, quote=False), print_exception=False)


def user_errors(fn):
    """Turn every failure into a gr.Error with a clear message; never leak a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (AudioError, GalleryError, CheckpointError, FileNotFoundError) as e:
            raise UserError(str(e)) from None
        except Exception:
            log.exception("handler %s failed", fn.__name__)
            raise UserError("Something went wrong while processing this request. "
                            "Please try again with a different clip.") from None

    return wrapper


def warn(message: str) -> None:
    """A non-blocking notice in the UI (a no-op outside a Gradio request)."""
    try:
        gr.Warning(html.escape(message, quote=False))
    except Exception:  # pragma: no cover - outside a request context
        pass


@dataclass
class Settings:
    checkpoint_dir: Path = ROOT / "checkpoints"
    gallery_path: str = "gallery.db"      # a file, ":memory:", or "session"
    max_seconds: float = MAX_SECONDS
    default_model: str | None = None
    device: str | None = "cpu"
    reference_dir: Path = REFERENCE_DIR
    on_space: bool = False
    keep_files_seconds: int = KEEP_FILES_SECONDS

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        env = os.environ if env is None else env
        on_space = bool(env.get("SPACE_ID"))
        gallery = env.get("SPEAKER_GALLERY_PATH") or (SESSION if on_space else "gallery.db")
        return cls(
            checkpoint_dir=Path(env.get("SPEAKER_CORE_CHECKPOINTS") or ROOT / "checkpoints"),
            gallery_path=gallery,
            max_seconds=float(env.get("SPEAKER_MAX_SECONDS") or MAX_SECONDS),
            default_model=env.get("SPEAKER_DEFAULT_MODEL") or None,
            device=env.get("SPEAKER_DEVICE") or "cpu",
            on_space=on_space,
            keep_files_seconds=int(env.get("SPEAKER_KEEP_FILES_SECONDS") or KEEP_FILES_SECONDS),
        )

    @property
    def delete_cache(self) -> tuple[int, int]:
        """gr.Blocks(delete_cache=...): look every few minutes for files older than ``keep_files_seconds``."""
        age = max(1, int(self.keep_files_seconds))
        return max(1, min(600, age // 2)), age

    @property
    def per_session(self) -> bool:
        return self.gallery_path == SESSION


# ----------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------


def source_digest(*paths) -> str:
    """10 hex digits of a hash over these source files: the example cache is keyed by it as well as by the model,
    so results cached by an older version of the app (another output layout) are never shown by a newer one."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:10]


class Models:
    """Checkpoints found in one folder, loaded once each and cached."""

    def __init__(self, directory: Path, default: str | None = None, device: str | None = None):
        self.directory = Path(directory)
        self._default = default
        self.device = device
        self._lock = threading.Lock()
        self._cache: dict[str, Recognizer] = {}
        self._ids: dict[str, str] = {}
        self._legacy: dict[str, str] = {}
        self._refs: dict[str, tuple[list[str], np.ndarray]] = {}
        self._unloadable: set[str] = set()   # skipped as the default after one failed load

    def choices(self) -> list[str]:
        return available_models(self.directory)

    def default(self) -> str | None:
        """The configured default, else the first model of the folder. A default that does not load (a fusion whose
        member file was replaced, a corrupt file) gives way to the next one that does, so the app still starts; the
        failure is logged once and not retried here (every request asks for the default), and choosing that model in
        the selector shows its message."""
        names = self.choices()
        order = list(dict.fromkeys([c for c in (self._default, DEFAULT_MODEL) if c in names] + names))
        for name in order:
            if name in self._unloadable:
                continue
            try:
                self.get(name)
                return name
            except Exception as e:
                self._unloadable.add(name)
                log.warning("model %s does not load, so it is not the default: %s", name, e)
        return order[0] if order else None

    def path(self, name: str) -> Path:
        names = self.choices()
        if not names:
            raise UserError(f"No model checkpoint found in {self.directory.name}/. "
                            "Train one, or put a .pt / .nemo file there.")
        if name not in names:  # also stops path tricks from API callers
            raise UserError(f"Unknown model '{name}'. Choose one of: {', '.join(names)}.")
        p = self.directory / (name if name.endswith(".nemo") else f"{name}.pt")
        return p

    def get(self, name: str | None) -> Recognizer:
        name = name or self.default()
        if name is None:
            self.path("")  # raises the "no checkpoint" error
        with self._lock:
            if name not in self._cache:
                p = self.path(name)
                model = load_model(p, device=self.device)
                self._cache[name] = model
                self._ids[name] = model.model_id   # the label the command line gives the same file
                # earlier versions hashed the whole file, so a new calibration looked like a new model
                self._legacy[name] = f"{name}@{hashlib.sha256(p.read_bytes()).hexdigest()[:10]}"
            return self._cache[name]

    def model_id(self, name: str | None) -> str:
        """Name plus a hash of what the embeddings depend on: the gallery never mixes embeddings of
        different weights, and a checkpoint re-calibrated with the same weights keeps its voiceprints."""
        name = name or self.default()
        self.get(name)
        return self._ids[name]

    def legacy_id(self, name: str | None) -> str:
        name = name or self.default()
        self.get(name)
        return self._legacy[name]

    def threshold(self, name: str | None) -> float:
        try:
            return float(self.get(name).threshold)
        except Exception:
            return DEFAULT_THRESHOLD

    def calibration(self, name: str | None) -> dict:
        cal = self.get(name).meta.get("calibration") or {}
        return cal if isinstance(cal, dict) else {}

    def reference(self, name: str | None, reference_dir: Path = REFERENCE_DIR
                  ) -> tuple[list[str], np.ndarray]:
        """Embeddings of the bundled reference clips for this model (computed once)."""
        name = name or self.default()
        model = self.get(name)
        with self._lock:
            if name in self._refs:
                return self._refs[name]
        files = sorted(Path(reference_dir).glob("*.flac")) + sorted(Path(reference_dir).glob("*.wav"))
        labels = ["ref " + f.stem.rsplit("_", 1)[0] for f in files]
        embs = model.embed_batch([str(f) for f in files]) if files else \
            np.zeros((0, model.emb_dim), np.float32)
        with self._lock:
            self._refs[name] = (labels, embs)
        return labels, embs


# ----------------------------------------------------------------------------------------
# clips, quality and display helpers
# ----------------------------------------------------------------------------------------
def _path_of(audio) -> str | tuple | None:
    """Gradio gives a file path (type="filepath"), a dict from the API, or (sr, array)."""
    if audio is None:
        return None
    if isinstance(audio, dict):
        audio = audio.get("path") or audio.get("name")
    if isinstance(audio, (str, os.PathLike)):
        return str(audio) if str(audio) else None
    if isinstance(audio, tuple) and len(audio) == 2:
        return audio
    raise UserError("Unsupported audio input.")


def _label_of(audio, fallback: str) -> str:
    if isinstance(audio, (str, os.PathLike)):
        return Path(audio).name or fallback
    return fallback


def read_clip(audio, what: str, max_seconds: float = MAX_SECONDS) -> Clip:
    """Load one input clip or raise a UserError naming which clip was bad."""
    src = _path_of(audio)
    if src is None:
        raise UserError(f"{what}: no audio. Record with the microphone or upload a file.")
    if isinstance(src, str):
        try:
            size = os.path.getsize(src)
        except OSError:
            raise UserError(f"{what}: the uploaded file is missing; upload it again.") from None
        if size > MAX_UPLOAD_MB * 2**20:
            raise UserError(f"{what}: the file is {size / 2**20:.0f} MB; the limit is {MAX_UPLOAD_MB} MB.")
    try:
        return require_speech(load_clip(src, max_seconds=max_seconds))   # faint noise must never "match" anybody
    except (NoSpeechError, SilentAudioError) as e:   # the words may come after the part that is used
        seconds = file_duration(src) if isinstance(src, str) else None
        later = (f" Only the first {max_seconds:g} s of this {seconds:.0f} s recording are used: if the speech "
                 "comes later, trim the file so that it starts there." if seconds and seconds > max_seconds else "")
        raise UserError(f"{what}: {e}{later}") from None
    except AudioError as e:
        raise UserError(f"{what}: {e}") from None


def cut_edges(model) -> dict | None:
    """The silence handling a model applies to every clip (``api.edges_of``): its own, or for a fusion the one all
    its members share (each member applies it itself, so the fusion object carries none)."""
    members = getattr(model, "members", None)
    if members:
        edges = [m.edges for m, _ in members]
        return edges[0] if edges[0] and all(e == edges[0] for e in edges) else None
    return getattr(model, "edges", None)


def clip_warnings(clip: Clip, max_seconds: float = MAX_SECONDS, edges: dict | None = None) -> list[str]:
    """What is wrong with a clip, in words. ``edges``: the model's edge handling (``api.edges_of``), which changes
    what silence around the words does to the score."""
    w = []
    if clip.truncated:
        w.append(f"very long ({clip.orig_duration:.0f} s): only the first {max_seconds:.0f} s were used")
    if clip.duration < SHORT_SECONDS:
        w.append(f"short ({clip.duration:.1f} s): scores from under {SHORT_SECONDS:.0f} s of speech are less reliable")
    if clip.speech_fraction < LOW_SPEECH_FRACTION:
        w.append(f"mostly silence or steady noise (speech detected in {clip.speech_fraction:.0%} "
                 "of the clip)")
    peak = float(frame_db(clip.wave).max())
    if peak < QUIET_DBFS:
        w.append(f"very quiet (loudest part {peak:.0f} dBFS): record closer to the microphone")
    if clip.clipped_fraction >= CLIPPED_FRACTION:
        w.append(f"clipped ({clip.clipped_fraction:.1%} of samples at full scale): record with lower input gain")
    lead, tail = clip.edge_silence
    # with no words found there is nothing for the silence to be around: "mostly silence" says it already
    if lead + tail >= EDGE_SILENCE_SECONDS and clip.speech_fraction >= NO_SPEECH_FRACTION:
        if edges:   # measured: this model's false rejects with quiet edges around one clip are near its clean ones
            w.append(f"{lead:.1f} s of silence before the words and {tail:.1f} s after: this model cuts it to "
                     f"{edges['keep']:g} s before embedding, so it shifts the score less than with other models")
        else:
            w.append(f"{lead:.1f} s of silence before the words and {tail:.1f} s after: silence shifts the score, "
                     "so trim it, or start speaking right after pressing record")
    return w


def clip_facts(clip: Clip, label: str, max_seconds: float = MAX_SECONDS, edges: dict | None = None) -> dict:
    return {
        "clip": label,
        "duration_s": round(clip.duration, 2),
        "original_duration_s": round(clip.orig_duration, 2),
        "sample_rate": int(clip.orig_sample_rate),
        "speech_fraction": round(clip.speech_fraction, 3),
        "speech_s": round(clip.speech_seconds, 2),   # from the first word to the last
        "clipped_fraction": round(clip.clipped_fraction, 4),
        "silence_before_after_s": [round(x, 2) for x in clip.edge_silence],
        "truncated": bool(clip.truncated),
        "warnings": clip_warnings(clip, max_seconds, edges),
    }


def _tmp_dir(max_age: float = KEEP_FILES_SECONDS) -> Path:
    """A fresh folder for one returned file. Gradio serves a copy from its own cache (which ``delete_cache``
    empties), so older folders here are removed on the way."""
    root = Path(tempfile.gettempdir()) / "speaker_studio"
    now = time.time()
    for old in root.glob("*"):
        try:
            if now - old.stat().st_mtime > max_age:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    d = root / uuid.uuid4().hex
    d.mkdir(parents=True, exist_ok=True)
    return d


# ----------------------------------------------------------------------------------------
# the studio: one object holding models and (shared or per-session) galleries
# ----------------------------------------------------------------------------------------
@dataclass
class Query:
    """The latest identify query of a session, kept for the voice map."""
    embedding: np.ndarray
    model_id: str
    label: str = "latest query"


@dataclass
class Studio:
    settings: Settings = field(default_factory=Settings.from_env)

    def __post_init__(self):
        s = self.settings
        self.models = Models(s.checkpoint_dir, s.default_model, s.device)
        self.shared_gallery = None if s.per_session else Gallery(s.gallery_path)
        self._warm_threads: list[threading.Thread] = []

    # -- start-up ------------------------------------------------------------------------
    def warm_up(self, background: bool = True) -> None:
        """Load the default model, embed the reference set and compile UMAP, off the request path."""
        umap_thread = projection.warm_up(background=background)
        if umap_thread is not None:
            self._warm_threads.append(umap_thread)

        def run():
            try:
                name = self.models.default()
                if name:
                    self.models.reference(name, self.settings.reference_dir)
            except Exception:
                log.exception("model warm-up failed")

        if background:
            t = threading.Thread(target=run, name="model-warm-up", daemon=True)
            t.start()
            self._warm_threads.append(t)
        else:
            run()

    def wait_warm(self, timeout: float = 120.0) -> None:
        """Wait for the warm-up threads: a process that exits while numba compiles in one can abort."""
        for t in self._warm_threads:
            t.join(timeout)

    def gallery(self, state) -> Gallery:
        """The gallery for this request: the shared one, or this session's private one."""
        if self.shared_gallery is not None:
            return self.shared_gallery
        if isinstance(state, Gallery):
            return state
        return Gallery(":memory:")

    def adopt(self, gallery: Gallery, model_name: str) -> str:
        """This model's id, after relabelling voiceprints saved under its older file-hash id (same weights)."""
        model_id = self.models.model_id(model_name)
        held = gallery.model()
        if held is not None and held[0] != model_id and held[0] == self.models.legacy_id(model_name):
            gallery.rename_model(held[0], model_id)
        return model_id

    def check_model(self, gallery: Gallery, model_id: str) -> None:
        """Refuse to mix voiceprints of two models, saying what the user can do about it."""
        held = gallery.model()
        if held is None or held[0] == model_id:
            return
        name = held[0].split("@", 1)[0]
        if name in self.models.choices() and self.models.model_id(name) == held[0]:
            raise UserError(f"The gallery holds voiceprints made with '{held[0]}', not '{model_id}'. "
                            f"Choose '{name}' in the model selector, or export and clear the gallery.")
        raise UserError(f"The gallery holds voiceprints made with '{held[0]}', which this app no longer has "
                        "(an updated checkpoint embeds voices differently, and scores between two models mean "
                        "nothing). Export the gallery to keep a record, clear it, and enroll the speakers again.")

    def session_state(self, gallery: Gallery):
        return None if self.shared_gallery is not None else gallery

    # -- model selector ------------------------------------------------------------------
    def model_choices(self) -> list[str]:
        return self.models.choices()

    def default_model(self) -> str | None:
        return self.models.default()

    def default_threshold(self, model_name: str | None = None) -> float:
        return round(self.models.threshold(model_name), 3)

    def threshold_for(self, model_name: str | None, threshold: float | None) -> float:
        """The threshold a request means. An API call that names another model but no threshold arrives with the
        slider's start value, the default model's calibrated threshold, which is wrong on the other model's scale:
        that value means "the named model's calibrated threshold". (In the browser, choosing a model moves the
        slider to its own threshold.) "The calibrated threshold" is the slider's value, rounded to 3 decimals, so
        that a cached example, an API call and the browser decide at, and show, the same number."""
        self.models.get(model_name)   # an unknown model name fails here, before any audio is read
        if threshold is None:
            return self.default_threshold(model_name)
        default = self.models.default()
        if model_name and model_name != default and abs(float(threshold) - self.default_threshold(default)) < 5e-4:
            return self.default_threshold(model_name)
        return float(threshold)

    def threshold_range(self, model_name: str | None = None) -> tuple[float, float]:
        """Slider bounds on the model's score scale: cosine [-0.2, 1], AS-norm around its calibration scores."""
        try:
            model = self.models.get(model_name)
        except Exception:
            return -0.2, 1.0
        if model.scale == "cosine":
            return -0.2, 1.0
        cal = self.models.calibration(model_name)
        both = np.asarray((cal.get("target_scores") or []) + (cal.get("nontarget_scores") or []), np.float64)
        lo, hi = (np.percentile(both, [1, 99]) if both.size else (-2.0, 8.0))
        t = model.threshold
        return float(np.floor(min(lo, t - 1.0))), float(np.ceil(max(hi, t + 1.0)))

    def threshold_slider(self, model_name: str | None = None) -> dict:
        lo, hi = self.threshold_range(model_name)
        return {"minimum": lo, "maximum": hi, "value": self.default_threshold(model_name)}

    def on_model_change(self, model_name: str):
        """New model selected: move both thresholds to its calibrated value, and clear the
        Verify and Identify results (their scores came from the previous model).

        Returns (verify threshold, identify threshold, model card, verify JSON, decision HTML,
        score plot, clip facts HTML, identify JSON, identify decision HTML, ranking plot).
        """
        # one update object per slider: Gradio consumes an update as it applies it, so a shared one left the
        # Identify slider at the previous model's value
        t = self.threshold_slider(model_name)
        return (gr.update(**t), gr.update(**t), self.model_card(model_name), None,
                empty_html(f"Model changed to {model_name}: press Verify again."), None, "",
                None, empty_html(f"Model changed to {model_name}: press Identify again."), None)

    # After a change to the gallery, the inputs that made it are reset, so that a second click cannot repeat it by
    # accident: Gradio keeps every input as it was.
    @staticmethod
    def enroll_offer(result) -> dict:
        """After an Identify answer of "unknown speaker", offer to enroll that clip."""
        return gr.update(visible=isinstance(result, dict) and "ranking" in result and result.get("speaker") is None)

    @staticmethod
    @user_errors
    def clip_to_enroll(audio, clips=None) -> list[str]:
        """The enrollment clip list with the clip to identify added (once), for enrolling an unknown voice."""
        path = _path_of(audio)
        if not isinstance(path, str):
            raise UserError("Add a clip to identify first.")
        current = [p for p in (_path_of(c) for c in (clips or [])) if isinstance(p, str)]
        return current if path in current else current + [path]

    @staticmethod
    def enrolled_inputs_cleared():
        """After an enrollment, empty the clip list and the recorder, so that the next speaker's clips are not
        added to this one's. The name stays, for adding more clips to the same speaker."""
        return None, None

    # A refused request leaves the previous request's outputs on screen (Gradio does not touch them), next to
    # an error notice. These replace them with a line that points at the notice.
    @staticmethod
    def verify_failed():
        """Returns (JSON, decision HTML, plot, clip facts HTML)."""
        return None, failed_html("No result"), None, ""

    @staticmethod
    def identify_failed():
        """Returns (JSON, decision HTML, plot)."""
        return None, failed_html("No answer"), None

    @staticmethod
    def enroll_failed() -> str:
        """An enrollment was refused (the notice says why): replace the previous enrollment's status."""
        return failed_html("Nothing was enrolled")

    @staticmethod
    def gallery_unchanged() -> str:
        """A delete, clear or import was refused: replace the previous action's status."""
        return failed_html("The gallery is unchanged")

    @staticmethod
    def export_failed():
        """An export was refused: no file to download, and a line that points at the notice."""
        return None, failed_html("Nothing was exported")

    @staticmethod
    def cleared_confirm_reset() -> bool:
        """After clearing the gallery, untick 'Yes, delete every speaker' (a later clear asks again)."""
        return False

    @staticmethod
    def renamed_input_cleared() -> str:
        """After a rename, empty the new-name box (the speaker chooser refreshes with the gallery)."""
        return ""

    @staticmethod
    def imported_inputs_cleared():
        """After an import, drop the file and untick 'Replace the current gallery'."""
        return None, False

    @staticmethod
    def on_verify_clip_change():
        """A clip was uploaded, recorded or removed: the shown result belonged to the previous pair (and moving the
        threshold would re-decide that pair), so it goes. Returns (JSON, decision HTML, plot, clip facts HTML)."""
        return None, empty_html("Clips changed: press Verify for their result."), None, ""

    @staticmethod
    def on_identify_clip_change():
        """The clip to identify changed: drop the previous clip's answer. Returns (JSON, decision HTML, plot)."""
        return None, empty_html("Clip changed: press Identify for its answer."), None

    @staticmethod
    def result_plot_visibility(result) -> dict:
        """Show a result plot only beside a result: an empty chart frame took a phone's screen height."""
        return gr.update(visible=isinstance(result, dict) and "score" in result)

    # -- verify --------------------------------------------------------------------------
    @user_errors
    def verify(self, audio_a, audio_b, model_name: str | None = None, threshold: float | None = None):
        """Returns (result JSON, decision HTML, score plot, clip facts HTML)."""
        ms = self.settings.max_seconds
        clip_a = read_clip(audio_a, "Clip A", ms)
        clip_b = read_clip(audio_b, "Clip B", ms)
        name = model_name or self.models.default()
        model = self.models.get(name)
        threshold = self.threshold_for(name, threshold)
        # model.score, keeping the parts: of the words when the checkpoint says so (parts_of), else one per clip
        pa, pb = model.embed_parts(clip_a), model.embed_parts(clip_b)
        score = model.compare_parts(pa, pb)
        facts = [clip_facts(clip_a, "A: " + _label_of(_path_of(audio_a), "clip A"), ms, cut_edges(model)),
                 clip_facts(clip_b, "B: " + _label_of(_path_of(audio_b), "clip B"), ms, cut_edges(model))]
        facts[0]["parts"], facts[1]["parts"] = len(pa), len(pb)
        if same_audio(voiceprint_of(pb), [voiceprint_of(pa)]) is not None:   # as enrollment counts a copy once
            facts[1]["warnings"].append("the same recording as clip A: a recording always matches itself, so this "
                                        "score says nothing about the voice; compare two different recordings")
        result = {"score": round(score, 4), "same_speaker": bool(score >= threshold),
                  "threshold": round(threshold, 4), "scale": model.scale, "model": name, "clips": facts,
                  "min_speech_s": min(f["speech_s"] for f in facts),
                  "warnings": [f"{f['clip']}: {w}" for f in facts for w in f["warnings"]]}
        tgt, non, long = calibration_samples(self.models.calibration(name) or {}, result["min_speech_s"])
        stricter = stricter_threshold(tgt, non) if long is not None else None
        if stricter is not None:   # a long pair: where a threshold would let 5 % of such dev pairs pass
            result["stricter_threshold"] = stricter
        for w in result["warnings"]:
            warn(w)
        return self._verify_outputs(result, name)

    @staticmethod
    def stricter_button(result) -> dict:
        """Offer the long-pair threshold as one click, beside a long pair's result whose threshold is lower."""
        t = result.get("stricter_threshold") if isinstance(result, dict) else None
        show = isinstance(t, (int, float)) and t > float(result.get("threshold", t))
        return gr.update(visible=show, value=f"Use the stricter threshold for long recordings ({t:.2f})" if show
                         else "Use the stricter threshold for long recordings")

    @staticmethod
    def apply_stricter(result):
        """The threshold slider's new value (its change re-decides the pair)."""
        t = result.get("stricter_threshold") if isinstance(result, dict) else None
        return float(t) if isinstance(t, (int, float)) else gr.skip()

    def verify_example(self, audio_a, audio_b):
        """Examples run with the default model at its calibrated threshold."""
        return self.verify(audio_a, audio_b, None, None)

    def _verify_outputs(self, result: dict, model_name: str | None):
        cal = self.models.calibration(model_name)
        s, t = result["score"], result["threshold"]
        scale = result.get("scale", "cosine")
        ms = result.get("min_speech_s")   # a long pair is read against the long calibration pairs
        return (result, decision_html(s, t, result["same_speaker"], cal, scale=scale, min_speech=ms),
                score_plot(s, t, cal, scale, min_speech=ms), facts_html(result["clips"]))

    @user_errors
    def redecide(self, result, threshold: float):
        """Threshold moved: re-decide from the last score, without embedding again."""
        if not isinstance(result, dict) or "score" not in result:
            return (gr.skip(),) * 4
        result = dict(result)
        result["threshold"] = round(float(threshold), 4)
        result["same_speaker"] = bool(float(result["score"]) >= float(threshold))
        model_name = result.get("model")
        if model_name not in self.models.choices():
            model_name = None
        return self._verify_outputs(result, model_name)

    # -- enroll --------------------------------------------------------------------------
    @user_errors
    def enroll(self, name, clips=None, recording=None, add_to_existing: bool = False,
               model_name: str | None = None, gallery_state=None, progress=gr.Progress()):
        """Enroll (or extend) a speaker from uploaded clips and/or a recording.

        Returns (result JSON, gallery HTML, status HTML, gallery state).
        """
        gallery = self.gallery(gallery_state)
        try:
            name = normalize_name(name if name is not None else "")
        except GalleryError as e:
            raise UserError(str(e)) from None
        items = [c for c in (clips or []) if c is not None]
        if isinstance(clips, (str, dict)):
            items = [clips]
        if recording is not None:
            items.append(recording)
        if not items:
            raise UserError("Add at least one clip: upload files or record with the microphone.")
        if len(items) > MAX_ENROLL_CLIPS:
            raise UserError(f"At most {MAX_ENROLL_CLIPS} clips per enrollment (got {len(items)}).")
        exists = name in gallery
        if exists and not add_to_existing:
            raise UserError(f"A speaker named '{name}' is already enrolled. Tick 'Add to an "
                            "existing speaker' to add these clips, or choose another name.")
        if add_to_existing and not exists:
            raise UserError(f"No speaker named '{name}' is enrolled yet; untick 'Add to an "
                            "existing speaker' to enroll them.")
        model_name = model_name or self.models.default()
        model = self.models.get(model_name)
        model_id = self.adopt(gallery, model_name)
        self.check_model(gallery, model_id)
        embs, durations, notes, labels = [], [], [], []
        n = len(items)
        for i, item in enumerate(items):
            what = f"Clip {i + 1} ({_label_of(_path_of(item), 'recording')})"
            progress((i, n), desc=f"Embedding clip {i + 1} of {n}")
            clip = read_clip(item, what, self.settings.max_seconds)
            for w in clip_warnings(clip, self.settings.max_seconds, cut_edges(model)):
                notes.append(f"{what}: {w}")
            embs.append(model.embed_clip(clip))
            durations.append(round(clip.duration, 3))
            labels.append(what)
        own, stored = gallery.clip_embeddings(name) if exists else ([], [])
        others = [(nm, e) for nm, e in zip(*gallery.clip_embeddings()) if nm not in own]
        keep = []
        for i, j in enumerate(earlier_copies(embs, stored)):
            if j is None:
                keep.append(i)
                k = same_audio(embs[i], [e for _, e in others])
                if k is not None:   # one recording under two names: both voiceprints would match it
                    notes.append(f"{labels[i]}: the same audio as a clip enrolled for {others[k][0]}; it was added, "
                                 f"so if the recording is not of {name}, delete {name} and enroll again without it")
            else:
                same = f"a clip already in {name}'s voiceprint" if j < 0 else f"clip {j + 1}"
                notes.append(f"{labels[i]}: the same audio as {same}, so it was not added again")
        if not keep:
            raise UserError(f"Every clip is already in {name}'s voiceprint: nothing was added.")
        embs, durations, n = [embs[i] for i in keep], [durations[i] for i in keep], len(keep)
        consistency = enrollment_consistency(model.compare_many, embs, stored)
        threshold = float(model.threshold)
        low = [(i, s) for i, s in zip(keep, consistency) if s is not None and s < threshold]
        if len(low) == 2 and n == 2 and not len(stored):   # two clips that disagree: one note, not two
            notes.append(f"{labels[low[0][0]]} and {labels[low[1][0]]} score {low[0][1]:.2f} against each other, "
                         f"under the threshold {threshold:.2f}: they may be two people, or one is a poor "
                         f"recording. Both were added; if one is not {name}, delete {name} and enroll again.")
        else:
            others = f"the clip already in {name}'s voiceprint" if n + len(stored) == 2 else f"{name}'s other clips"
            notes += [f"{labels[i]}: scores {s:.2f} against {others}, under the threshold {threshold:.2f}. It may be "
                      f"another person or a poor recording; it was added, so if it is not {name}, delete {name} "
                      "and enroll again without it." for i, s in low]
        progress((len(items), len(items)), desc="Saving voiceprint")
        if exists:
            row = gallery.add_clips(name, np.stack(embs), model_id, durations)
            verb = f"Added {n} clip{'s' if n != 1 else ''} to"
        else:
            row = gallery.enroll(name, np.stack(embs), model_id, durations)
            verb = f"Enrolled from {n} clip{'s' if n != 1 else ''}:"
        for note in notes:
            warn(note)
        result = {"speaker": row.name, "clips": row.clips, "added": n, "model": model_id,
                  "created": row.created, "warnings": notes,
                  "consistency": [{"clip": labels[i], "score": None if s is None else round(s, 4)}
                                  for i, s in zip(keep, consistency)], "threshold": round(threshold, 4)}
        status = (f"<div class='status ok'>✔ {verb} <b>{display_name(row.name)}</b> "
                  f"({row.clips} clip{'s' if row.clips != 1 else ''} in the voiceprint)</div>")
        if notes:
            status += "<ul class='warnings'>" + "".join(
                f"<li>⚠️ {html.escape(x)}</li>" for x in notes) + "</ul>"
        return result, gallery_html(gallery), status, self.session_state(gallery)

    # -- identify ------------------------------------------------------------------------
    @user_errors
    def identify(self, audio, model_name: str | None = None, threshold: float | None = None,
                 top_k: int = TOP_K, gallery_state=None):
        """Returns (result JSON, decision HTML, ranking plot, query state, gallery state)."""
        gallery = self.gallery(gallery_state)
        clip = read_clip(audio, "The clip to identify", self.settings.max_seconds)
        if len(gallery) == 0:
            raise UserError("The gallery is empty: enroll at least one speaker first.")
        model_name = model_name or self.models.default()
        model = self.models.get(model_name)
        model_id = self.adopt(gallery, model_name)
        self.check_model(gallery, model_id)
        threshold = self.threshold_for(model_name, threshold)
        top_k = int(min(max(1, int(top_k or TOP_K)), 20))
        emb = model.embed_clip(clip)
        best, ranking = gallery.identify(emb, top_k=top_k, threshold=threshold, model_name=model_id,
                                         scorer=model.compare_many)
        notes = clip_warnings(clip, self.settings.max_seconds, cut_edges(model))
        names, enrolled = gallery.clip_embeddings()
        k = same_audio(emb, enrolled)
        if k is not None:   # a clip always matches itself
            notes.append(f"this recording is one of {names[k]}'s enrolled clips, and a recording always "
                         "matches itself: identify a recording that was not enrolled")
        for w in notes:
            warn(f"Clip: {w}")
        rank = [{"speaker": m.name, "score": round(m.score, 4)} for m in ranking]
        result = {"speaker": best.name if best else None,
                  "score": round(ranking[0].score, 4) if ranking else None,
                  "threshold": round(threshold, 4), "scale": model.scale, "ranking": rank, "model": model_id,
                  "clip": clip_facts(clip, _label_of(_path_of(audio), "recording"),
                                     self.settings.max_seconds, cut_edges(model)),
                  "warnings": notes}
        explain = voiceprint_html(self.models.calibration(model_name), ranking[0].score, threshold)
        if best is not None:
            verdict = decision_html(best.score, threshold, True, None,
                                    labels=(best.name, "Unknown speaker"), scale=model.scale, extra_html=explain)
        else:
            verdict = decision_html(
                ranking[0].score, threshold, False, None, labels=("", "Unknown speaker"), scale=model.scale,
                extra_html="<p class='explain'>No enrolled voiceprint scored above the threshold: "
                           "this voice is not in the gallery (closest: "
                           f"{display_name(ranking[0].name)}).</p>" + explain)
        query = Query(emb, model_id, "latest query")
        return (result, verdict, ranking_plot(rank, threshold, model.scale), query,
                self.session_state(gallery))

    # -- gallery management --------------------------------------------------------------
    def show_gallery(self, gallery_state=None):
        """Returns (gallery HTML, speaker chooser update, gallery state)."""
        gallery = self.gallery(gallery_state)
        names = [r.name for r in gallery.speakers()]
        return gallery_html(gallery), gr.update(choices=names, value=None), \
            self.session_state(gallery)

    @user_errors
    def list_speakers(self, gallery_state=None):
        """Returns (list of {name, clips, created, updated, model}, gallery state)."""
        gallery = self.gallery(gallery_state)
        rows = [{"name": r.name, "clips": r.clips, "created": r.created, "updated": r.updated,
                 "model": r.model} for r in gallery.speakers()]
        return rows, self.session_state(gallery)

    @user_errors
    def delete_speaker(self, name, gallery_state=None):
        """Returns (status HTML, gallery HTML, gallery state)."""
        gallery = self.gallery(gallery_state)
        if not name:
            raise UserError("Choose a speaker to delete.")
        name = normalize_name(name)
        if not gallery.delete(name):
            raise UserError(f"No speaker named '{name}' is enrolled.")
        return (f"<div class='status ok'>Deleted <b>{display_name(name)}</b> and all their clips.</div>",
                gallery_html(gallery), self.session_state(gallery))

    @user_errors
    def rename_speaker(self, name, new_name, gallery_state=None):
        """Returns (status HTML, gallery HTML, gallery state)."""
        gallery = self.gallery(gallery_state)
        if not name:
            raise UserError("Choose a speaker to rename.")
        row = gallery.rename(name, "" if new_name is None else new_name)
        return (f"<div class='status ok'>Renamed <b>{display_name(normalize_name(name))}</b> to "
                f"<b>{display_name(row.name)}</b>.</div>", gallery_html(gallery), self.session_state(gallery))

    @user_errors
    def clear_gallery(self, confirm: bool = False, gallery_state=None):
        """Returns (status HTML, gallery HTML, gallery state)."""
        gallery = self.gallery(gallery_state)
        if not confirm:
            raise UserError("Tick 'Yes, delete every speaker' to clear the gallery.")
        n = gallery.clear()
        return (f"<div class='status ok'>Cleared the gallery ({n} speaker{'s' if n != 1 else ''} deleted).</div>",
                gallery_html(gallery), self.session_state(gallery))

    @user_errors
    def export_gallery(self, gallery_state=None):
        """Returns (path of a JSON file, status HTML, gallery state)."""
        gallery = self.gallery(gallery_state)
        if len(gallery) == 0:
            raise UserError("The gallery is empty: there is nothing to export.")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = _tmp_dir(self.settings.keep_files_seconds) / f"speaker-gallery-{stamp}.json"
        path.write_text(gallery.export_json(), encoding="utf-8")
        n = len(gallery)
        return (str(path), f"<div class='status ok'>Exported {n} speaker{'s' if n != 1 else ''}. "
                           "The file holds voiceprints (biometric data): keep it private.</div>",
                self.session_state(gallery))

    @user_errors
    def import_gallery(self, file, replace: bool = False, model_name: str | None = None,
                       gallery_state=None):
        """Returns (status HTML, gallery HTML, gallery state). Rejected whole on any problem."""
        gallery = self.gallery(gallery_state)
        model_name = model_name or self.models.default()
        model_id = self.adopt(gallery, model_name)
        path = _path_of(file)
        if not isinstance(path, str):
            raise UserError("Choose a gallery file (.json) to import.")
        try:
            size = os.path.getsize(path)
        except OSError:
            raise UserError("The uploaded file is missing; upload it again.") from None
        if size > MAX_IMPORT_BYTES:
            raise UserError(f"The gallery file is too large ({size / 2**20:.0f} MB).")
        with open(path, "rb") as f:
            data = f.read()
        n = gallery.import_json(data, replace=bool(replace), expect_model=model_id,
                                model_aliases={self.models.legacy_id(model_name): model_id})
        return (f"<div class='status ok'>Imported {n} speaker{'s' if n != 1 else ''}"
                f"{' (gallery replaced)' if replace else ''}.</div>",
                gallery_html(gallery), self.session_state(gallery))

    # -- voice map -----------------------------------------------------------------------
    @user_errors
    def voice_map(self, include_reference: bool = True, model_name: str | None = None,
                  gallery_state=None, query=None):
        """Returns (figure, PNG path, info JSON, gallery state)."""
        gallery = self.gallery(gallery_state)
        model_name = model_name or self.models.default()
        model_id = self.adopt(gallery, model_name)
        labels: list[str] = []
        ref_flags: list[bool] = []
        blocks = []
        note = []
        names, embs = gallery.clip_embeddings()
        held = gallery.model()
        if names and held and held[0] != model_id:
            note.append(f"The gallery was enrolled with '{held[0]}', not '{model_id}': "
                        "its speakers are not shown.")
            names, embs = [], embs[:0]
        if names:
            labels += names
            ref_flags += [False] * len(names)
            blocks.append(embs)
        if include_reference:
            rl, re_ = self.models.reference(model_name, self.settings.reference_dir)
            labels += rl
            ref_flags += [True] * len(rl)
            if len(rl):
                blocks.append(re_)
        q = None
        if isinstance(query, Query) and query.model_id == model_id:
            blocks.append(query.embedding[None, :])
            q = True
        if not blocks:
            fig = projection.plot_voice_map(np.zeros((0, 2)), [], title="Voice map")
            info = {"points": 0, "method": None, "speakers": [], "notes": note}
        else:
            x = np.concatenate(blocks).astype(np.float32)
            coords, method = projection.project(x)
            qpt = coords[-1] if q else None
            pts = coords[:-1] if q else coords
            fig = projection.plot_voice_map(pts, labels, reference=ref_flags, query=qpt,
                                            title=f"Voice map · {model_name}", method=method)
            info = {"points": int(len(labels)), "method": method,
                    "speakers": list(dict.fromkeys(labels)), "query": bool(q), "notes": note,
                    "coords": [[round(float(a), 3), round(float(b), 3)] for a, b in pts],
                    "labels": labels}
        path = _tmp_dir(self.settings.keep_files_seconds) / "voice-map.png"
        projection.figure_png(fig, str(path))
        for n in note:
            warn(n)
        return fig, str(path), info, self.session_state(gallery)

    # -- about ---------------------------------------------------------------------------
    def model_card(self, model_name: str | None = None) -> str:
        try:
            model = self.models.get(model_name)
        except Exception as e:  # no checkpoint yet: say so instead of failing
            return f"**No model loaded.** {html.escape(str(e))}"
        return model_card_markdown(model, self.models.model_id(model_name or self.models.default()))



def example_paths() -> tuple[list[list[str]], list[str]]:
    rows, labels = [], []
    for a, b, label in VERIFY_EXAMPLES:
        pa, pb = EXAMPLES_DIR / a, EXAMPLES_DIR / b
        if pa.is_file() and pb.is_file():
            rows.append([str(pa), str(pb)])
            labels.append(label)
    return rows, labels


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)
