"""Gallery storage: enrollment, identification, name rules, export/import, concurrency."""

import json
import sqlite3
import threading

import numpy as np
import pytest

from speaker_core.gallery import (MAX_NAME_LEN, Gallery, GalleryError, display_name,
                                  normalize_name, speakers_table)

D = 16
rng = np.random.default_rng(0)


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def voice(seed, n=3, spread=0.1):
    r = np.random.default_rng(seed)
    centre = r.standard_normal(D)
    return centre, np.stack([unit(centre + spread * r.standard_normal(D)) for _ in range(n)])


@pytest.fixture
def g():
    gal = Gallery()
    yield gal
    gal.close()


def test_enroll_voiceprint_is_normalised_mean(g):
    _, clips = voice(1)
    row = g.enroll("Alice", clips, "m1", durations=[1.0, 2.0, 3.0])
    assert (row.name, row.clips, row.model, row.dim) == ("Alice", 3, "m1", D)
    names, prints = g.voiceprints()
    assert names == ["Alice"]
    np.testing.assert_allclose(prints[0], unit(clips.mean(0)), atol=1e-6)
    assert abs(np.linalg.norm(prints[0]) - 1) < 1e-6


def test_add_clips_updates_voiceprint(g):
    _, clips = voice(2, n=4)
    g.enroll("Bob", clips[:1], "m1")
    row = g.add_clips("bob", clips[1:], "m1")  # names match case-insensitively
    assert row.clips == 4 and row.name == "Bob"
    np.testing.assert_allclose(g.voiceprints()[1][0], unit(clips.mean(0)), atol=1e-6)
    names, embs = g.clip_embeddings()
    assert names == ["Bob"] * 4 and embs.shape == (4, D)
    g.enroll("Cy", voice(3, n=2)[1], "m1")
    assert g.clip_embeddings("BOB")[0] == ["Bob"] * 4 and len(g.clip_embeddings()[0]) == 6
    assert g.clip_embeddings("Nobody")[0] == []
    with pytest.raises(GalleryError, match="No speaker"):
        g.add_clips("Nobody", clips, "m1")


def test_identify_open_set(g):
    centres = {}
    for i, name in enumerate(["Ann", "Ben", "Cid"]):
        centres[name], clips = voice(10 + i)
        g.enroll(name, clips, "m1")
    best, ranking = g.identify(centres["Ben"], top_k=2, threshold=0.5)
    assert best.name == "Ben" and best.score > 0.9
    assert [m.name for m in ranking][0] == "Ben" and len(ranking) == 2
    assert ranking[0].score >= ranking[1].score
    stranger = unit(rng.standard_normal(D))
    best, ranking = g.identify(stranger, threshold=0.99)
    assert best is None and len(ranking) == 3
    assert Gallery().identify(stranger) == (None, [])


def test_duplicate_and_invalid_names(g):
    _, clips = voice(3)
    g.enroll("  Dana   Scully ", clips, "m1")
    assert "dana scully" in g
    with pytest.raises(GalleryError, match="already enrolled"):
        g.enroll("DANA SCULLY", clips, "m1")
    for bad in ["", "   ", None, 42, "x" * (MAX_NAME_LEN + 1), "a\x00b", "evil\u202egnp",
                "zero\u200bwidth", "line\x1bbreak"]:
        with pytest.raises(GalleryError):
            g.enroll(bad, clips, "m1")
    assert len(g) == 1
    assert normalize_name("x" * MAX_NAME_LEN) == "x" * MAX_NAME_LEN
    assert normalize_name("Zoë") == "Zoë"
    assert normalize_name("👩\u200d💻 Ada") == "👩\u200d💻 Ada"  # emoji with a joiner are fine


def test_html_names_stored_raw_and_escaped_for_display(g):
    _, clips = voice(4)
    name = "<script>alert('x')</script>"
    g.enroll(name, clips, "m1")
    assert g.speakers()[0].name == name
    assert "<" not in display_name(name) and "&lt;script&gt;" in display_name(name)


def test_refuses_mixing_models_and_bad_embeddings(g):
    _, clips = voice(5)
    g.enroll("A", clips, "m1")
    with pytest.raises(GalleryError, match="cannot be mixed"):
        g.enroll("B", clips, "m2")
    with pytest.raises(GalleryError, match="cannot be mixed"):
        g.enroll("B", np.ones((1, D + 1)), "m1")
    with pytest.raises(GalleryError, match="model"):
        g.identify(clips[0], model_name="m2")
    for bad in [np.zeros((1, D)), np.full((1, D), np.nan), [], [[]], "abc"]:
        with pytest.raises(GalleryError):
            g.enroll("C", bad, "m1")
    assert [r.name for r in g.speakers()] == ["A"]


def test_delete_and_clear(g):
    for i, n in enumerate(["A", "B", "C"]):
        g.enroll(n, voice(20 + i)[1], "m1")
    assert g.delete("b") is True and g.delete("B") is False
    assert [r.name for r in g.speakers()] == ["A", "C"]
    assert g.clip_embeddings()[1].shape == (6, D)
    assert g.clear() == 2 and len(g) == 0 and g.model() is None
    assert g.clip_embeddings()[0] == []
    g.enroll("D", voice(30)[1], "m2")  # an empty gallery accepts any model again
    assert speakers_table(g.speakers())[0][:2] == ["D", 3]


def test_rename_keeps_the_clips_and_refuses_a_taken_name(g):
    g.enroll("Ada", voice(40)[1], "m1")
    g.enroll("Bo", voice(41)[1], "m1")
    before = g.voiceprints()[1][0].copy()
    row = g.rename("ada", "  Ada Lovelace ")
    assert row.name == "Ada Lovelace" and row.clips == 3
    names, prints = g.voiceprints()
    assert names == ["Ada Lovelace", "Bo"] and np.array_equal(prints[0], before)
    assert g.rename("bo", "BO").name == "BO"                       # a change of case only
    with pytest.raises(GalleryError, match="already enrolled"):
        g.rename("BO", "ada lovelace")
    with pytest.raises(GalleryError, match="No speaker named"):
        g.rename("Cy", "Dee")
    with pytest.raises(GalleryError):
        g.rename("BO", "<b>\x00</b>")                              # the name rules apply to the new name
    assert [r.name for r in g.speakers()] == ["Ada Lovelace", "BO"]


def test_export_import_roundtrip(g):
    for i, n in enumerate(["Ann", "<b>Ben</b>", "Çağla"]):
        g.enroll(n, voice(40 + i)[1], "m1", durations=[1.5, 2.0, None])
    text = g.export_json()
    doc = json.loads(text)
    assert doc["model"] == "m1" and doc["dim"] == D and len(doc["speakers"]) == 3
    g2 = Gallery()
    assert g2.import_json(text) == 3
    assert [r.name for r in g2.speakers()] == [r.name for r in g.speakers()]
    np.testing.assert_allclose(g2.voiceprints()[1], g.voiceprints()[1], atol=1e-6)
    # import into a gallery that already holds one of these names: rejected whole
    g3 = Gallery()
    g3.enroll("ann", voice(50)[1], "m1")
    with pytest.raises(GalleryError, match="already enrolled"):
        g3.import_json(text)
    assert [r.name for r in g3.speakers()] == ["ann"]
    assert g3.import_json(text, replace=True) == 3 and len(g3) == 3
    assert g3.import_json(text.encode("utf-8"), replace=True) == 3


def _valid_doc():
    g = Gallery()
    g.enroll("Ann", voice(60)[1], "m1")
    g.enroll("Ben", voice(61)[1], "m1")
    return json.loads(g.export_json())


def _mutations():
    def m(f):
        d = _valid_doc()
        f(d)
        return json.dumps(d)

    yield "not json {"
    yield "[]"
    yield "null"
    yield '{"format": "speaker-gallery", "version": 1, "speakers": [' + "[" * 5000 + "]" * 5000 + "]}"
    yield json.dumps(_valid_doc()).replace("0.", "NaN, 0.", 1)
    yield m(lambda d: d.pop("format"))
    yield m(lambda d: d.update(version=99))
    yield m(lambda d: d.update(version=True))
    yield m(lambda d: d.update(speakers={"a": 1}))
    yield m(lambda d: d.update(model=None))
    yield m(lambda d: d.update(dim="16"))
    yield m(lambda d: d.update(dim=10 ** 9))
    yield m(lambda d: d["speakers"].append(d["speakers"][0]))              # duplicate
    yield m(lambda d: d["speakers"][1].update(name="ANN"))                # duplicate, case
    yield m(lambda d: d["speakers"][1].update(name=""))
    yield m(lambda d: d["speakers"][1].update(name="x" * 500))
    yield m(lambda d: d["speakers"][1].update(name="a\u0000b"))
    yield m(lambda d: d["speakers"][1].update(name=["list"]))
    yield m(lambda d: d["speakers"][1].update(created="yesterday"))
    yield m(lambda d: d["speakers"][1].update(clips=[]))
    yield m(lambda d: d["speakers"][1].update(clips="abc"))
    yield m(lambda d: d["speakers"][1]["clips"][0].update(embedding=[0.1] * (D - 1)))
    yield m(lambda d: d["speakers"][1]["clips"][0].update(embedding=[0.0] * D))
    yield m(lambda d: d["speakers"][1]["clips"][0].update(embedding=["1"] * D))
    yield m(lambda d: d["speakers"][1]["clips"][0].update(embedding=[True] * D))
    yield m(lambda d: d["speakers"][1]["clips"][0].update(embedding=[1e300] * D))
    yield m(lambda d: d["speakers"][1]["clips"][0].update(duration=-1))
    yield m(lambda d: d["speakers"][1]["clips"][0].update(duration="long"))
    yield m(lambda d: d["speakers"][1]["clips"][0].update(added="<script>"))
    yield m(lambda d: d["speakers"][1]["clips"].append(7))
    yield m(lambda d: d["speakers"].append("Mallory"))
    yield b"\xff\xfe not utf8"
    yield 12345


@pytest.mark.parametrize("text", list(_mutations()))
def test_hostile_import_rejected_whole(text):
    g = Gallery()
    g.enroll("Existing", voice(70)[1], "m1")
    before = g.export_dict()["speakers"]
    for replace in (False, True):
        with pytest.raises(GalleryError):
            g.import_json(text, replace=replace)
        assert g.export_dict()["speakers"] == before


def test_import_other_model_rejected_unless_replace():
    g = Gallery()
    g.enroll("Existing", voice(71)[1], "m2")
    text = json.dumps(_valid_doc())
    with pytest.raises(GalleryError, match="cannot be mixed"):
        g.import_json(text)
    assert [r.name for r in g.speakers()] == ["Existing"]
    with pytest.raises(GalleryError, match="Nothing was imported"):
        g.import_json(text, replace=True, expect_model="m2")
    assert g.model() == ("m2", D)
    assert g.import_json(text, replace=True) == 2 and g.model() == ("m1", D)


def test_import_size_limit(monkeypatch):
    import speaker_core.gallery as gm
    monkeypatch.setattr(gm, "MAX_IMPORT_BYTES", 100)
    g = Gallery()
    with pytest.raises(GalleryError, match="too large"):
        g.import_json(json.dumps(_valid_doc()))


def test_limits():
    g = Gallery(max_speakers=2, max_clips_per_speaker=4)
    g.enroll("A", voice(80)[1], "m1")
    g.enroll("B", voice(81)[1], "m1")
    with pytest.raises(GalleryError, match="full"):
        g.enroll("C", voice(82)[1], "m1")
    with pytest.raises(GalleryError, match="At most 4"):
        g.add_clips("A", voice(83)[1], "m1")
    assert g.speakers()[0].clips == 3


def test_file_gallery_persists_and_uses_wal(tmp_path):
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.enroll("Persisted", voice(90)[1], "m1")
    with Gallery(path) as g:
        assert [r.name for r in g.speakers()] == ["Persisted"]
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_concurrent_writes_lose_nothing(tmp_path):
    g = Gallery(tmp_path / "c.db")
    other = Gallery(tmp_path / "c.db")  # a second connection to the same file
    errors = []

    def worker(k, gal):
        try:
            for i in range(10):
                name = f"spk-{k}-{i}"
                gal.enroll(name, voice(1000 + 100 * k + i, n=2)[1], "m1")
                gal.add_clips(name, voice(5000 + 100 * k + i, n=1)[1], "m1")
                try:
                    gal.enroll("contended", voice(7)[1], "m1")
                except GalleryError:
                    pass
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k, g if k % 2 else other))
               for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = g.speakers()
    assert len(rows) == 61
    assert all(r.clips == 3 for r in rows)
    assert len(g.clip_embeddings()[0]) == 183
    g.close()
    other.close()


def test_identify_uses_the_models_scorer(g):
    for i, name in enumerate(["Ann", "Ben"]):
        g.enroll(name, voice(30 + i)[1], "m1")
    names, prints = g.voiceprints()
    calls = []

    def scorer(q, p):
        calls.append(p.shape)
        return -(p @ q)            # a scale where lower cosine ranks first
    best, ranking = g.identify(prints[0], threshold=-0.5, scorer=scorer)
    assert calls == [(2, D)] and ranking[0].name == names[1] and best.name == names[1]


def test_a_file_that_is_not_a_gallery_is_refused_untouched(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"my notes, not sqlite\n" * 50)
    with pytest.raises(GalleryError, match="Cannot open the gallery file .*not a database"):
        Gallery(str(bad))
    assert bad.read_bytes() == b"my notes, not sqlite\n" * 50
    with pytest.raises(GalleryError, match="Cannot open the gallery file"):
        Gallery(str(tmp_path / "no-such-folder" / "g.db"))


def test_a_deleted_speaker_leaves_no_voiceprint_in_the_file(tmp_path, monkeypatch):
    connect = sqlite3.connect

    def connect_insecure(*args, **kwargs):   # as in SQLite builds whose secure_delete default is off
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect_insecure)
    path = tmp_path / "g.db"
    g = Gallery(str(path))
    _, prints = voice(7, n=2)
    g.enroll("Victim", prints, "m@1")
    g.enroll("Other", voice(8, n=1)[1], "m@1")
    assert g.delete("Victim")

    def on_disk():   # the database and its WAL
        return b"".join(p.read_bytes() for p in tmp_path.iterdir())

    assert b"Victim" not in on_disk() and prints[0].astype("<f4").tobytes()[:64] not in on_disk()   # at once
    _, more = voice(9, n=1)
    g.enroll("Gone", more, "m@1")
    g.clear()
    assert b"Gone" not in on_disk() and more[0].astype("<f4").tobytes()[:64] not in on_disk()
    g.close()
    assert b"Victim" not in on_disk() and b"Gone" not in on_disk()
