"""Speaker gallery: enrolled voiceprints stored in SQLite.

A speaker is enrolled from one or more clip embeddings; the voiceprint is the
L2-normalised mean of the (L2-normalised) clip embeddings. Every write runs in
one ``BEGIN IMMEDIATE`` transaction under a process-wide lock, so concurrent
requests can neither interleave half-written speakers nor lose data. File-backed
galleries use WAL journaling, so a second process reading the file is safe too.

Voiceprints are biometric data: a gallery file identifies people by voice. Keep
it private, delete speakers on request (``delete``), and never publish exports.

Import (``import_json``) validates the whole document before it touches the
database, then applies it in a single transaction: a malformed or hostile file
is rejected whole and the existing gallery is left exactly as it was.
"""

from __future__ import annotations

import html
import json
import math
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

import numpy as np

SCHEMA_VERSION = 1
EXPORT_FORMAT = "speaker-gallery"

MAX_NAME_LEN = 64
MAX_SPEAKERS = 1000
MAX_CLIPS_PER_SPEAKER = 100
MAX_DIM = 4096
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_DURATION = 24 * 3600.0
# The same audio embeds to the same vector (cosine 1.0 up to float rounding); two recordings, even halves of one
# take, stay far below this. Used to keep a clip uploaded twice from counting twice in a voiceprint.
SAME_AUDIO_COSINE = 0.9999


class GalleryError(ValueError):
    """A user-facing gallery error (bad name, duplicate, model mismatch, bad import...)."""


@dataclass(frozen=True)
class Match:
    name: str
    score: float


@dataclass(frozen=True)
class SpeakerRow:
    name: str
    clips: int
    created: str
    updated: str
    model: str
    dim: int


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def normalize_name(name) -> str:
    """Apply the name rules; return the canonical name or raise GalleryError.

    Rules: a string; Unicode NFC; surrounding whitespace stripped and inner runs
    of whitespace collapsed to one space; 1-64 characters; no control, format
    (e.g. bidi overrides, zero-width), surrogate, private-use or unassigned
    characters. HTML is allowed in a name (people type odd things), so every
    display of a name must go through ``display_name`` (html.escape).
    """
    if not isinstance(name, str):
        raise GalleryError("The speaker name must be text.")
    name = unicodedata.normalize("NFC", name)
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")
           and c not in " \t\n\r\u200d"]  # ZWJ joins emoji; bidi overrides etc. are refused
    if bad:
        raise GalleryError("The speaker name contains control or invisible characters; "
                           "use letters, digits, spaces and punctuation only.")
    name = " ".join(name.split())
    if not name:
        raise GalleryError("Enter a speaker name.")
    if len(name) > MAX_NAME_LEN:
        raise GalleryError(f"The speaker name is too long ({len(name)} characters; "
                           f"at most {MAX_NAME_LEN}).")
    return name


def display_name(name: str) -> str:
    """HTML-escaped name, safe to put into HTML or Markdown output."""
    return html.escape(name, quote=True)


def _as_matrix(embeddings, dim: int | None = None) -> np.ndarray:
    try:
        m = np.asarray(embeddings, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise GalleryError(f"Embeddings must be numeric arrays ({e}).") from None
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise GalleryError("Give at least one non-empty embedding.")
    if m.shape[1] > MAX_DIM:
        raise GalleryError(f"Embedding dimension {m.shape[1]} exceeds {MAX_DIM}.")
    if dim is not None and m.shape[1] != dim:
        raise GalleryError(f"Embedding dimension {m.shape[1]} does not match this "
                           f"speaker's dimension {dim}.")
    if not np.all(np.isfinite(m)):
        raise GalleryError("Embeddings contain NaN or infinite values.")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    if np.any(norms <= 1e-12):
        raise GalleryError("An embedding is all zeros.")
    return (m / norms).astype(np.float32)


def voiceprint_of(clips: np.ndarray) -> np.ndarray:
    """A speaker's voiceprint: the normalised mean of their unit clip embeddings, (N, D) -> (D,) float32."""
    mean = clips.astype(np.float64).mean(axis=0)
    n = np.linalg.norm(mean)
    if n <= 1e-12:  # clips cancel out exactly: fall back to the first clip
        return clips[0].astype(np.float32)
    return (mean / n).astype(np.float32)


def same_audio(embedding, stored) -> int | None:
    """Index of the first of ``stored`` unit embeddings that is the same audio as ``embedding``, or None.

    >>> same_audio(np.eye(3)[1], np.eye(3)), same_audio(np.ones(3) / np.sqrt(3), np.eye(3))
    (1, None)
    """
    e = np.asarray(embedding, np.float32)
    return next((j for j, x in enumerate(stored) if float(np.dot(e, np.asarray(x, np.float32))) >= SAME_AUDIO_COSINE),
                None)


def earlier_copies(new, stored=()) -> list[int | None]:
    """For each new unit embedding: None when its audio is new, -1 when it is already among ``stored``, or the
    index of an earlier new embedding of the same audio. Only the None ones belong in a voiceprint.

    >>> a, b = np.eye(3, dtype=np.float32)[:2]
    >>> earlier_copies([a, b, a], stored=[b])
    [None, -1, 0]
    """
    seen = [(-1, e) for e in stored]
    out: list[int | None] = []
    for i, e in enumerate(new):
        k = same_audio(e, [x for _, x in seen])
        out.append(None if k is None else seen[k][0])
        if out[-1] is None:
            seen.append((i, e))
    return out


def enrollment_consistency(scorer, new, stored=()) -> list[float | None]:
    """Each new clip's score against the voiceprint of every other clip of the speaker (the stored ones and the
    other new ones), with ``scorer(query (D,), prints (N, D)) -> (N,)`` (``Recognizer.compare_many``); None when
    it is the only clip. A clip that scores under the threshold against the rest is likely another person or a
    poor recording, and would pull the voiceprint away. The embeddings are unit length, as stored."""
    clips, stored = list(new), list(stored)
    out: list[float | None] = []
    for i, e in enumerate(clips):
        others = stored + clips[:i] + clips[i + 1:]
        out.append(float(scorer(e, voiceprint_of(np.stack(others))[None])[0]) if others else None)
    return out


def _blob(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(v, dtype="<f4").tobytes()


def _unblob(b: bytes, dim: int) -> np.ndarray:
    v = np.frombuffer(b, dtype="<f4")
    if v.shape[0] != dim:
        raise GalleryError("The gallery database is corrupt (embedding size mismatch).")
    return v.astype(np.float32)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS speakers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    voiceprint BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY,
    speaker_id INTEGER NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    duration REAL,
    added TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS clips_speaker ON clips(speaker_id);
"""


class Gallery:
    """Enrolled speakers in SQLite (``path=":memory:"`` for a private in-memory gallery)."""

    def __init__(self, path: str = ":memory:", *, max_speakers: int = MAX_SPEAKERS,
                 max_clips_per_speaker: int = MAX_CLIPS_PER_SPEAKER):
        self.path = str(path)
        self.max_speakers = max_speakers
        self.max_clips_per_speaker = max_clips_per_speaker
        self._lock = threading.RLock()
        # One connection shared by all threads, serialised by the lock; SQLite's
        # own file locking (WAL + busy timeout) covers other processes.
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False,
                                         isolation_level=None, timeout=30.0)
            self._open()
        except sqlite3.Error as e:   # not a database, a folder that does not exist, no permission
            if hasattr(self, "_conn"):
                self._conn.close()
            raise GalleryError(f"Cannot open the gallery file {self.path}: {e}. Nothing was written to it; "
                               "choose another file (SPEAKER_GALLERY_PATH in the app).") from None

    def _open(self) -> None:
        with self._lock:
            self._conn.execute("PRAGMA foreign_keys = ON")
            # a deleted voiceprint is overwritten on disk, not left in free pages (off in some SQLite builds)
            self._conn.execute("PRAGMA secure_delete = ON")
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(_SCHEMA)
            with self._tx() as c:
                c.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                          (str(SCHEMA_VERSION),))
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                raise GalleryError(f"The gallery file {self.path} has an unsupported schema "
                                   f"version {row[0] if row else None}.")

    # -- plumbing -------------------------------------------------------------
    class _Tx:
        def __init__(self, gallery: "Gallery"):
            self.g = gallery

        def __enter__(self):
            self.g._lock.acquire()
            try:
                self.g._conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.g._lock.release()
                raise
            return self.g._conn

        def __exit__(self, exc_type, exc, tb):
            try:
                if exc_type is None:
                    self.g._conn.execute("COMMIT")
                else:
                    self.g._conn.execute("ROLLBACK")
            finally:
                self.g._lock.release()
            return False

    def _tx(self) -> "Gallery._Tx":
        return Gallery._Tx(self)

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- queries --------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM speakers").fetchone()[0]

    def __contains__(self, name) -> bool:
        try:
            name = normalize_name(name)
        except GalleryError:
            return False
        with self._lock:
            return self._conn.execute("SELECT 1 FROM speakers WHERE name = ?",
                                      (name,)).fetchone() is not None

    def model(self) -> tuple[str, int] | None:
        """(model name, embedding dim) of the voiceprints held, or None when empty."""
        with self._lock:
            row = self._conn.execute("SELECT model, dim FROM speakers LIMIT 1").fetchone()
        return (row[0], int(row[1])) if row else None

    def speakers(self) -> list[SpeakerRow]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.name, COUNT(c.id), s.created, s.updated, s.model, s.dim "
                "FROM speakers s LEFT JOIN clips c ON c.speaker_id = s.id "
                "GROUP BY s.id ORDER BY s.name COLLATE NOCASE").fetchall()
        return [SpeakerRow(r[0], int(r[1]), r[2], r[3], r[4], int(r[5])) for r in rows]

    def voiceprints(self) -> tuple[list[str], np.ndarray]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, voiceprint, dim FROM speakers ORDER BY name COLLATE NOCASE"
            ).fetchall()
        if not rows:
            return [], np.zeros((0, 0), np.float32)
        return [r[0] for r in rows], np.stack([_unblob(r[1], r[2]) for r in rows])

    def clip_embeddings(self, name: str | None = None) -> tuple[list[str], np.ndarray]:
        """Every enrolled clip's embedding with its speaker name (for the voice map), or only ``name``'s."""
        where, args = ("WHERE s.name = ? ", (normalize_name(name),)) if name is not None else ("", ())
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.name, c.embedding, s.dim FROM clips c JOIN speakers s "
                f"ON c.speaker_id = s.id {where}ORDER BY s.name COLLATE NOCASE, c.id", args).fetchall()
        if not rows:
            return [], np.zeros((0, 0), np.float32)
        return [r[0] for r in rows], np.stack([_unblob(r[1], r[2]) for r in rows])

    def identify(self, embedding, top_k: int = 5, threshold: float = 0.0,
                 model_name: str | None = None, scorer=None) -> tuple[Match | None, list[Match]]:
        """Score a query against every voiceprint.

        ``scorer(query (D,), prints (N, D)) -> (N,)`` puts scores on the model's scale (e.g.
        ``Recognizer.compare_many``); by default the cosine. Returns (best match or None when the best score
        is below ``threshold``, the top-k ranking, best first).
        """
        names, prints = self.voiceprints()
        if not names:
            return None, []
        held = self.model()
        if model_name is not None and held is not None and held[0] != model_name:
            raise GalleryError(f"The gallery holds voiceprints made with model '{held[0]}', "
                               f"not '{model_name}'. Switch model or clear the gallery.")
        q = _as_matrix(embedding, dim=prints.shape[1])[0]
        scores = np.asarray(scorer(q, prints) if scorer is not None else prints @ q, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")[: max(1, int(top_k))]
        ranking = [Match(names[i], float(scores[i])) for i in order]
        best = ranking[0] if ranking[0].score >= threshold else None
        return best, ranking

    # -- writes ---------------------------------------------------------------
    def _check_model(self, c: sqlite3.Connection, model_name: str, dim: int) -> None:
        row = c.execute("SELECT model, dim FROM speakers LIMIT 1").fetchone()
        if row is not None and (row[0] != model_name or int(row[1]) != dim):
            raise GalleryError(
                f"The gallery holds voiceprints made with model '{row[0]}' ({row[1]}-dim); "
                f"embeddings from '{model_name}' ({dim}-dim) cannot be mixed with them. "
                "Switch model, or export and clear the gallery first.")

    def enroll(self, name, embeddings, model_name: str,
               durations: Sequence[float | None] | None = None) -> SpeakerRow:
        """Enroll a new speaker from one or more clip embeddings."""
        name = normalize_name(name)
        if not isinstance(model_name, str) or not model_name:
            raise GalleryError("A model name is required.")
        clips = _as_matrix(embeddings)
        if clips.shape[0] > self.max_clips_per_speaker:
            raise GalleryError(f"At most {self.max_clips_per_speaker} clips per speaker.")
        durs = self._durations(durations, clips.shape[0])
        now = _now()
        with self._tx() as c:
            self._check_model(c, model_name, clips.shape[1])
            if c.execute("SELECT 1 FROM speakers WHERE name = ?", (name,)).fetchone():
                raise GalleryError(f"A speaker named '{name}' is already enrolled. "
                                   "Add clips to it, or choose another name.")
            if c.execute("SELECT COUNT(*) FROM speakers").fetchone()[0] >= self.max_speakers:
                raise GalleryError(f"The gallery is full ({self.max_speakers} speakers).")
            cur = c.execute(
                "INSERT INTO speakers(name, created, updated, model, dim, voiceprint) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, now, now, model_name, clips.shape[1], _blob(voiceprint_of(clips))))
            sid = cur.lastrowid
            c.executemany("INSERT INTO clips(speaker_id, embedding, duration, added) "
                          "VALUES (?, ?, ?, ?)",
                          [(sid, _blob(e), d, now) for e, d in zip(clips, durs)])
        return self._row(name)

    def add_clips(self, name, embeddings, model_name: str,
                  durations: Sequence[float | None] | None = None) -> SpeakerRow:
        """Add clips to an enrolled speaker and update the voiceprint."""
        name = normalize_name(name)
        new = _as_matrix(embeddings)
        durs = self._durations(durations, new.shape[0])
        now = _now()
        with self._tx() as c:
            row = c.execute("SELECT id, model, dim, name FROM speakers WHERE name = ?",
                            (name,)).fetchone()
            if row is None:
                raise GalleryError(f"No speaker named '{name}' is enrolled.")
            sid, model, dim, name = row
            self._check_model(c, model_name, new.shape[1])
            old = [_unblob(r[0], dim) for r in
                   c.execute("SELECT embedding FROM clips WHERE speaker_id = ?", (sid,))]
            if len(old) + new.shape[0] > self.max_clips_per_speaker:
                raise GalleryError(f"At most {self.max_clips_per_speaker} clips per speaker "
                                   f"('{name}' has {len(old)}).")
            allclips = np.concatenate([np.stack(old), new]) if old else new
            c.executemany("INSERT INTO clips(speaker_id, embedding, duration, added) "
                          "VALUES (?, ?, ?, ?)",
                          [(sid, _blob(e), d, now) for e, d in zip(new, durs)])
            c.execute("UPDATE speakers SET voiceprint = ?, updated = ? WHERE id = ?",
                      (_blob(voiceprint_of(allclips)), now, sid))
        return self._row(name)

    def rename(self, name, new_name) -> SpeakerRow:
        """Give an enrolled speaker another name; the clips and voiceprint stay. A change of case only is allowed."""
        name, new_name = normalize_name(name), normalize_name(new_name)
        with self._tx() as c:
            row = c.execute("SELECT id, name FROM speakers WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise GalleryError(f"No speaker named '{name}' is enrolled.")
            other = c.execute("SELECT id FROM speakers WHERE name = ?", (new_name,)).fetchone()
            if other is not None and other[0] != row[0]:
                raise GalleryError(f"A speaker named '{new_name}' is already enrolled; choose another name, "
                                   "or delete that speaker first.")
            c.execute("UPDATE speakers SET name = ?, updated = ? WHERE id = ?", (new_name, _now(), row[0]))
        return self._row(new_name)

    def delete(self, name) -> bool:
        """Delete a speaker and all their clips. Returns False if not enrolled."""
        name = normalize_name(name)
        with self._tx() as c:
            deleted = c.execute("DELETE FROM speakers WHERE name = ?", (name,)).rowcount > 0
        self._flush_deleted()
        return deleted

    def clear(self) -> int:
        """Delete everything; returns how many speakers were removed."""
        with self._tx() as c:
            n = c.execute("SELECT COUNT(*) FROM speakers").fetchone()[0]
            c.execute("DELETE FROM clips")
            c.execute("DELETE FROM speakers")
        self._flush_deleted()
        return int(n)

    def _flush_deleted(self) -> None:
        """Write the deletion into the database file now and empty the WAL, whose older page copies would still hold
        the deleted voiceprints until the next checkpoint (best effort: a reader in another process can delay it)."""
        if self.path != ":memory:":
            with self._lock:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _row(self, name: str) -> SpeakerRow:
        for r in self.speakers():
            if r.name.casefold() == name.casefold():
                return r
        raise GalleryError(f"No speaker named '{name}' is enrolled.")

    @staticmethod
    def _durations(durations, n: int) -> list[float | None]:
        if durations is None:
            return [None] * n
        durations = list(durations)
        if len(durations) != n:
            raise GalleryError("One duration per clip is required.")
        out = []
        for d in durations:
            if d is None:
                out.append(None)
                continue
            if isinstance(d, bool) or not isinstance(d, (int, float, np.floating, np.integer)):
                raise GalleryError("Clip durations must be numbers.")
            d = float(d)
            if not math.isfinite(d) or d < 0 or d > MAX_DURATION:
                raise GalleryError("Clip durations must be finite, non-negative seconds.")
            out.append(d)
        return out

    # -- export / import ------------------------------------------------------
    def export_dict(self) -> dict:
        with self._lock:
            speakers = self._conn.execute(
                "SELECT id, name, created, updated, model, dim FROM speakers "
                "ORDER BY name COLLATE NOCASE").fetchall()
            out = []
            for sid, name, created, updated, model, dim in speakers:
                clips = self._conn.execute(
                    "SELECT embedding, duration, added FROM clips WHERE speaker_id = ? "
                    "ORDER BY id", (sid,)).fetchall()
                out.append({
                    "name": name, "created": created, "updated": updated,
                    "clips": [{"embedding": [float(x) for x in _unblob(e, dim)],
                               "duration": d, "added": a} for e, d, a in clips],
                })
        held = self.model()
        return {"format": EXPORT_FORMAT, "version": SCHEMA_VERSION,
                "exported": _now(),
                "model": held[0] if held else None, "dim": held[1] if held else None,
                "speakers": out}

    def export_json(self) -> str:
        return json.dumps(self.export_dict(), ensure_ascii=False, indent=1)

    def rename_model(self, old: str, new: str) -> int:
        """Relabel voiceprints made by ``old`` as ``new`` (the same weights under a new id). Returns rows changed."""
        with self._tx() as c:
            return c.execute("UPDATE speakers SET model = ? WHERE model = ?", (new, old)).rowcount

    def import_json(self, text, replace: bool = False, expect_model: str | None = None,
                    model_aliases: dict | None = None) -> int:
        """Validate a gallery export completely, then apply it in one transaction.

        ``replace=True`` replaces the whole gallery; otherwise the speakers are
        added, and a name already enrolled rejects the import. Returns the
        number of speakers imported. ``expect_model`` refuses voiceprints made by
        any other model; ``model_aliases`` maps older ids of the same weights to
        the current one. On any problem raises GalleryError and the gallery is
        unchanged.
        """
        doc = _parse_import(text)
        model, dim, speakers = _validate_import(doc, self.max_speakers,
                                                self.max_clips_per_speaker)
        model = (model_aliases or {}).get(model, model)
        if speakers and expect_model is not None and model != expect_model:
            raise GalleryError(f"The file holds voiceprints made with model '{model}', but the "
                               f"current model is '{expect_model}'. Select that model, or "
                               "re-enroll the speakers. Nothing was imported.")
        with self._tx() as c:
            if replace:
                c.execute("DELETE FROM clips")
                c.execute("DELETE FROM speakers")
            if speakers:
                self._check_model(c, model, dim)
                existing = c.execute("SELECT COUNT(*) FROM speakers").fetchone()[0]
                if existing + len(speakers) > self.max_speakers:
                    raise GalleryError(f"Importing would exceed {self.max_speakers} speakers.")
                for sp in speakers:
                    if c.execute("SELECT 1 FROM speakers WHERE name = ?",
                                 (sp["name"],)).fetchone():
                        raise GalleryError(f"The import contains '{sp['name']}', who is already "
                                           "enrolled. Nothing was imported; delete that speaker "
                                           "or import with 'replace'.")
                    cur = c.execute(
                        "INSERT INTO speakers(name, created, updated, model, dim, voiceprint) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (sp["name"], sp["created"], sp["updated"], model, dim,
                         _blob(voiceprint_of(sp["embeddings"]))))
                    sid = cur.lastrowid
                    c.executemany(
                        "INSERT INTO clips(speaker_id, embedding, duration, added) "
                        "VALUES (?, ?, ?, ?)",
                        [(sid, _blob(e), d, a) for e, d, a in
                         zip(sp["embeddings"], sp["durations"], sp["added"])])
        if replace:
            self._flush_deleted()
        return len(speakers)


def _parse_import(text) -> dict:
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_IMPORT_BYTES:
            raise GalleryError(f"The gallery file is too large (over {MAX_IMPORT_BYTES // 2**20} MB).")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise GalleryError("The gallery file is not UTF-8 JSON.") from None
    if not isinstance(text, str):
        raise GalleryError("The gallery file must be JSON text.")
    if len(text) > MAX_IMPORT_BYTES:
        raise GalleryError(f"The gallery file is too large (over {MAX_IMPORT_BYTES // 2**20} MB).")

    def no_constants(c):
        raise GalleryError(f"The gallery file contains an invalid number ({c}).")

    try:
        doc = json.loads(text, parse_constant=no_constants)
    except GalleryError:
        raise
    except RecursionError:
        raise GalleryError("The gallery file is nested too deeply.") from None
    except (json.JSONDecodeError, ValueError) as e:
        raise GalleryError(f"The gallery file is not valid JSON ({e}).") from None
    if not isinstance(doc, dict):
        raise GalleryError("The gallery file must be a JSON object.")
    return doc


def _check_time(value, what: str) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise GalleryError(f"{what} must be an ISO date-time string.")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise GalleryError(f"{what} is not an ISO date-time: {value[:40]!r}.") from None
    return value


def _validate_import(doc: dict, max_speakers: int, max_clips: int):
    if doc.get("format") != EXPORT_FORMAT:
        raise GalleryError("This is not a speaker-gallery export (missing 'format').")
    version = doc.get("version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise GalleryError(f"Unsupported gallery export version {version!r} "
                           f"(this app reads version {SCHEMA_VERSION}).")
    speakers = doc.get("speakers")
    if not isinstance(speakers, list):
        raise GalleryError("'speakers' must be a list.")
    if len(speakers) > max_speakers:
        raise GalleryError(f"The import has {len(speakers)} speakers; at most {max_speakers}.")
    model, dim = doc.get("model"), doc.get("dim")
    if not speakers:
        return model, dim, []
    if not isinstance(model, str) or not (1 <= len(model) <= 200):
        raise GalleryError("'model' must name the model that made the embeddings.")
    if isinstance(dim, bool) or not isinstance(dim, int) or not (1 <= dim <= MAX_DIM):
        raise GalleryError(f"'dim' must be an integer from 1 to {MAX_DIM}.")
    seen: set[str] = set()
    out = []
    for i, sp in enumerate(speakers):
        where = f"speaker #{i + 1}"
        if not isinstance(sp, dict):
            raise GalleryError(f"{where} must be an object.")
        try:
            name = normalize_name(sp.get("name"))
        except GalleryError as e:
            raise GalleryError(f"{where}: {e}") from None
        key = name.casefold()
        if key in seen:
            raise GalleryError(f"The import lists '{name}' twice.")
        seen.add(key)
        created = _check_time(sp.get("created"), f"{where} 'created'")
        updated = _check_time(sp.get("updated", created), f"{where} 'updated'")
        clips = sp.get("clips")
        if not isinstance(clips, list) or not clips:
            raise GalleryError(f"{where} ('{name}') must have a non-empty 'clips' list.")
        if len(clips) > max_clips:
            raise GalleryError(f"{where} ('{name}') has more than {max_clips} clips.")
        embs, durs, added = [], [], []
        for j, clip in enumerate(clips):
            cw = f"{where} ('{name}') clip #{j + 1}"
            if not isinstance(clip, dict):
                raise GalleryError(f"{cw} must be an object.")
            e = clip.get("embedding")
            if not isinstance(e, list) or len(e) != dim:
                raise GalleryError(f"{cw}: 'embedding' must be a list of {dim} numbers.")
            if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in e):
                raise GalleryError(f"{cw}: 'embedding' must contain only numbers.")
            v = np.asarray(e, dtype=np.float64)
            if not np.all(np.isfinite(v)) or np.any(np.abs(v) > 1e6):
                raise GalleryError(f"{cw}: 'embedding' has non-finite or huge values.")
            n = np.linalg.norm(v)
            if n <= 1e-12:
                raise GalleryError(f"{cw}: 'embedding' is all zeros.")
            embs.append((v / n).astype(np.float32))
            d = clip.get("duration")
            if d is not None:
                if isinstance(d, bool) or not isinstance(d, (int, float)) or \
                        not math.isfinite(d) or not (0 <= d <= MAX_DURATION):
                    raise GalleryError(f"{cw}: 'duration' must be non-negative seconds or null.")
                d = float(d)
            durs.append(d)
            added.append(_check_time(clip.get("added", created), f"{cw} 'added'"))
        out.append({"name": name, "created": created, "updated": updated,
                    "embeddings": np.stack(embs), "durations": durs, "added": added})
    return model, dim, out


def speakers_table(rows: Iterable[SpeakerRow]) -> list[list]:
    """Rows for a table display: name (raw text), clips, enrolled date, last update."""
    return [[r.name, r.clips, r.created[:10], r.updated[:16].replace("T", " ")] for r in rows]
