"""The public API, through gradio_client, against the app launched in-process on a free port.

The app runs as on a Space (SPEAKER_GALLERY_PATH=session): each client is its own session
with a private gallery. Uses the default shipped checkpoint when present, else a random model.
"""
import json
import socket
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from test_app_logic import DEFAULT, EX, REF, make_checkpoint_dir, needs_trained  # noqa: E402

PUBLIC = {"/verify", "/enroll", "/identify", "/voice_map", "/delete_speaker", "/rename_speaker", "/clear_gallery",
          "/export_gallery", "/import_gallery"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path_factory, gallery_path="session", **settings):
    import os

    os.environ["GRADIO_EXAMPLES_CACHE"] = str(tmp_path_factory.mktemp("examples_cache"))
    import app
    from speaker_core.app_logic import Settings, Studio

    studio = Studio(Settings(checkpoint_dir=make_checkpoint_dir(tmp_path_factory),
                             gallery_path=gallery_path, **settings))
    studio.warm_up(background=True)
    demo = app.build_demo(studio)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_kwargs())
    demo.studio = studio
    return demo, f"http://127.0.0.1:{port}/"


def close(demo) -> None:
    demo.close()
    demo.studio.wait_warm()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    demo, url = launch(tmp_path_factory)
    yield url
    close(demo)


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


def f(name):
    return handle_file(str(EX / name))


def r(name):
    return handle_file(str(REF / name))


def test_public_endpoints_and_private_steps(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == PUBLIC
    assert not api["unnamed_endpoints"]
    verify = api["named_endpoints"]["/verify"]
    assert [p["parameter_name"] for p in verify["parameters"]][:2] == ["audio_a", "audio_b"]
    enroll = api["named_endpoints"]["/enroll"]
    assert [p["parameter_name"] for p in enroll["parameters"]][:2] == ["name", "clips"]
    assert api["named_endpoints"]["/identify"]["parameters"][0]["parameter_name"] == "audio"


def test_verify_contract(client):
    result, decision, plot, facts = client.predict(f("so0049_a.wav"), f("so0049_b.wav"),
                                                   api_name="/verify")
    assert set(result) >= {"score", "same_speaker", "threshold"}
    assert isinstance(result["score"], float) and isinstance(result["same_speaker"], bool)
    assert result["same_speaker"] == (result["score"] >= result["threshold"])
    assert f"{result['scale'].replace('as-norm', 'AS-norm')} score" in decision and "so0049_b.wav" in facts
    # an explicit threshold decides: just below the score accepts, just above it rejects
    for t, same in ((round(result["score"] - 0.01, 4), True), (round(result["score"] + 0.01, 4), False)):
        r = client.predict(f("so0049_a.wav"), f("so0049_b.wav"), DEFAULT, t, api_name="/verify")[0]
        assert r["same_speaker"] is same and r["threshold"] == t


def test_naming_another_model_uses_its_own_threshold(client, server):
    """An API call that names a model and no threshold is decided at that model's calibrated threshold (the
    client fills in the slider's start value, which belongs to the default model)."""
    import os

    from speaker_core.api import load_model
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/verify"]
    choices = next(p for p in api["parameters"] if p["parameter_name"] == "model_name")["type"].get("enum") or []
    others = [m for m in choices if m != DEFAULT]
    if not others:
        pytest.skip("only one checkpoint in the app's folder")
    r = client.predict(f("so0049_a.wav"), f("so0049_b.wav"), others[0], api_name="/verify")[0]
    d = client.predict(f("so0049_a.wav"), f("so0049_b.wav"), api_name="/verify")[0]
    folder = Path(os.environ.get("SPEAKER_TEST_CHECKPOINTS") or ROOT / "checkpoints")   # as make_checkpoint_dir
    expected = load_model(folder / f"{others[0]}.pt", device="cpu").threshold
    assert r["model"] == others[0] and d["model"] == DEFAULT
    assert r["threshold"] == round(expected, 3) != d["threshold"]   # the calibrated one, as its slider shows it
    assert r["same_speaker"] == (r["score"] >= r["threshold"])


def test_verify_accepts_a_phone_recording(client, tmp_path):
    # an M4A (AAC) voice memo, as phones save them: same speaker and clip as the WAV, so it scores as a match
    from test_audio import _encode
    from speaker_core.audio import load_clip

    memo = tmp_path / "memo.m4a"
    _encode(load_clip(EX / "so0049_b.wav").wave, 16000, memo, "aac", "mp4", 44100, "stereo")
    wav = client.predict(f("so0049_a.wav"), f("so0049_b.wav"), api_name="/verify")[0]
    m4a = client.predict(f("so0049_a.wav"), handle_file(str(memo)), api_name="/verify")[0]
    assert m4a["clips"][1]["duration_s"] == pytest.approx(wav["clips"][1]["duration_s"], abs=0.1)
    assert m4a["score"] == pytest.approx(wav["score"], abs=0.5)
    # and as enrollment clips, next to a browser's WebM/Opus recording
    web = tmp_path / "browser.webm"
    _encode(load_clip(EX / "so0049_a.wav").wave, 16000, web, "libopus", "webm", 48000, "mono")
    res = client.predict("Memo", [handle_file(str(memo)), handle_file(str(web))], api_name="/enroll")[0]
    assert res["speaker"] == "Memo" and res["clips"] == 2


@needs_trained
def test_verify_decides_real_pairs(client):
    same = client.predict(f("fa08bd_a.wav"), f("fa08bd_b.wav"), api_name="/verify")[0]
    diff = client.predict(f("ls405_a.wav"), f("ls3240_a.wav"), api_name="/verify")[0]
    assert same["score"] > diff["score"]
    assert same["same_speaker"] and not diff["same_speaker"]


def test_bad_input_is_a_clear_error(client, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"definitely not audio" * 100)
    with pytest.raises(AppError, match="Could not decode"):
        client.predict(handle_file(str(bad)), f("so0049_b.wav"), api_name="/verify")
    with pytest.raises(AppError, match="no audio"):
        client.predict(None, f("so0049_b.wav"), api_name="/verify")
    with pytest.raises(AppError, match="Enter a speaker name"):
        client.predict("  ", [f("so0049_a.wav")], api_name="/enroll")
    with pytest.raises(AppError, match="Unknown model|not in the list|choices"):
        client.predict(f("so0049_a.wav"), f("so0049_b.wav"), "../../etc/passwd", 0.3,
                       api_name="/verify")


def test_oversized_upload_is_refused(client, tmp_path):
    big = tmp_path / "big.wav"
    with open(big, "wb") as fh:
        fh.truncate(21 * 2**20)
    with pytest.raises(Exception, match="(?i)size|large|413"):
        client.predict(handle_file(str(big)), f("so0049_b.wav"), api_name="/verify")


def test_enroll_identify_map_export_import(server):
    c = Client(server, verbose=False)
    res, table, status = c.predict("Ada", [r("librispeech-1578_1.flac"), r("librispeech-1578_2.flac")],
                                   api_name="/enroll")
    assert res["speaker"] == "Ada" and res["clips"] == 2 and "Ada" in table
    res = c.predict("Ada", [], handle_file(str(REF / "librispeech-1578_3.flac")), True,
                    api_name="/enroll")[0]
    assert res["clips"] == 3
    c.predict("Bo", [r("speechocean-9624_1.flac"), r("speechocean-9624_2.flac")], api_name="/enroll")

    result, verdict, plot = c.predict(r("speechocean-9624_3.flac"), api_name="/identify")
    assert set(result) >= {"speaker", "score", "ranking"}
    assert [x["speaker"] for x in result["ranking"]][0] in ("Ada", "Bo")
    unknown = c.predict(r("speechocean-9624_3.flac"), DEFAULT, round(result["score"] + 0.01, 4), 5,
                        api_name="/identify")[0]
    assert unknown["speaker"] is None and unknown["score"] is not None

    plot, png, info = c.predict(True, api_name="/voice_map")
    assert Path(png).read_bytes()[:4] == b"\x89PNG"
    assert info["points"] == 5 + 24 and info["query"] is True and "Ada" in info["speakers"]

    path, status = c.predict(api_name="/export_gallery")
    doc = json.loads(Path(path).read_text())
    assert sorted(s["name"] for s in doc["speakers"]) == ["Ada", "Bo"]

    # another session cannot see this gallery; it can import the export
    other = Client(server, verbose=False)
    with pytest.raises(AppError, match="empty"):
        other.predict(r("speechocean-9624_3.flac"), api_name="/identify")
    status, table = other.predict(handle_file(path), False, api_name="/import_gallery")
    assert "Imported 2 speakers" in status and "Ada" in table

    # hostile import: rejected whole, gallery untouched
    evil = Path(path).with_name("evil.json")
    doc["speakers"].append({"name": "<img src=x onerror=alert(1)>", "created": "x", "clips": []})
    evil.write_text(json.dumps(doc))
    with pytest.raises(AppError):
        other.predict(handle_file(str(evil)), True, api_name="/import_gallery")
    assert other.predict(api_name="/export_gallery")[0]

    status, table = c.predict("Bo", "Bea", api_name="/rename_speaker")
    assert "Renamed" in status and "Bea" in table
    with pytest.raises(AppError, match="No speaker named"):
        c.predict("Bo", "Cy", api_name="/rename_speaker")
    status, table = c.predict("Bea", "Bo", api_name="/rename_speaker")
    status, table = c.predict("Bo", api_name="/delete_speaker")
    assert "Deleted" in status and "Bo" not in table
    with pytest.raises(AppError, match="Tick"):
        c.predict(False, api_name="/clear_gallery")
    status, table = c.predict(True, api_name="/clear_gallery")
    assert "No speakers enrolled" in table
    # the other session still has both speakers
    assert len(json.loads(Path(other.predict(api_name="/export_gallery")[0]).read_text())
               ["speakers"]) == 2


def test_html_name_escaped_in_outputs(server):
    c = Client(server, verbose=False)
    name = "<script>alert('x')</script>"
    res, table, status = c.predict(name, [f("so0049_a.wav")], api_name="/enroll")
    assert res["speaker"] == name
    assert "<script>" not in table and "<script>" not in status and "&lt;script&gt;" in table
    with pytest.raises(AppError, match="already enrolled"):
        c.predict(name, [f("so0049_b.wav")], api_name="/enroll")
    with pytest.raises(AppError, match="too long"):
        c.predict("x" * 200, [f("so0049_b.wav")], api_name="/enroll")


def test_concurrent_enrolls_into_a_shared_file_gallery(tmp_path_factory):
    """Run locally: one gallery file shared by all sessions; concurrent writes lose nothing."""
    path = tmp_path_factory.mktemp("shared") / "gallery.db"
    demo, url = launch(tmp_path_factory, gallery_path=str(path))
    try:
        clients = [Client(url, verbose=False) for _ in range(4)]
        jobs = [c.submit(f"Speaker {i}", [f("so0049_a.wav"), f("so2242_a.wav")], api_name="/enroll")
                for i, c in enumerate(clients)]
        jobs += [c.submit("Contended", [f("so0981_a.wav")], api_name="/enroll") for c in clients]
        ok = errors = 0
        for j in jobs:
            try:
                j.result(timeout=120)
                ok += 1
            except AppError as e:
                assert "already enrolled" in str(e)
                errors += 1
        assert (ok, errors) == (5, 3)  # exactly one "Contended" enrollment wins
        rows = clients[0].predict(api_name="/export_gallery")[0]
        doc = json.loads(Path(rows).read_text())
        assert sorted((s["name"], len(s["clips"])) for s in doc["speakers"]) == \
            [("Contended", 1)] + [(f"Speaker {i}", 2) for i in range(4)]
        # every session sees the shared gallery, and it is on disk
        from speaker_core.gallery import Gallery
        with Gallery(path) as g:
            assert len(g) == 5
    finally:
        close(demo)


def test_python_app_py_respects_server_env(tmp_path_factory):
    """`python app.py` starts on GRADIO_SERVER_NAME/PORT with settings from the environment."""
    import os
    import subprocess
    import time
    import urllib.request

    port = free_port()
    tmp = tmp_path_factory.mktemp("app_py")
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               SPEAKER_CORE_CHECKPOINTS=str(make_checkpoint_dir(tmp_path_factory)),
               SPEAKER_GALLERY_PATH=str(tmp / "gallery.db"),
               GRADIO_EXAMPLES_CACHE=str(tmp / "cache"), GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        result = Client(url, verbose=False).predict(f("so0049_a.wav"), f("so0049_b.wav"),
                                                    api_name="/verify")[0]
        assert "score" in result
        client = Client(url, verbose=False)
        client.predict("Persisted", [f("so0049_a.wav")], api_name="/enroll")
        assert (tmp / "gallery.db").is_file()  # the local gallery is a file
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_uploads_and_returned_files_are_deleted_after_a_while(tmp_path_factory):
    """Uploaded voices and returned files (a gallery export holds voiceprints) leave the server's temporary
    folder after ``keep_files_seconds``; the app keeps working, and the cached examples stay."""
    demo, url = launch(tmp_path_factory, keep_files_seconds=4)   # long enough for a request to read its upload
    try:
        c = Client(url, verbose=False)
        c.predict(handle_file(str(EX / "so0049_a.wav")), handle_file(str(EX / "so0049_b.wav")), api_name="/verify")
        c.predict("Ann", [handle_file(str(EX / "so0049_a.wav"))], None, False, api_name="/enroll")
        exported = c.predict(api_name="/export_gallery")[0]
        assert Path(exported).exists()   # the client's own download stays with the client
        held = [Path(f) for s in demo.temp_file_sets for f in s]
        assert any(p.name == "so0049_a.wav" for p in held) and any(p.suffix == ".json" for p in held)
        kept = {Path(f) for b in demo.blocks.values() for f in getattr(b, "keep_in_cache", set())}
        deadline = time.time() + 30
        while time.time() < deadline and any(p.exists() for p in held if p not in kept):
            time.sleep(0.5)
        assert not [p for p in held if p not in kept and p.exists()]
        assert all(p.exists() for p in kept)
        res = c.predict(handle_file(str(EX / "so0049_a.wav")), handle_file(str(EX / "so0049_b.wav")),
                        api_name="/verify")[0]
        assert "score" in res
    finally:
        close(demo)
