"""End to end in headless Chromium (Playwright, Debian's /usr/bin/chromium).

Uploads two clips and verifies; records from Chromium's fake microphone and enrolls;
identifies; draws the voice map; checks that a script-laden name stays inert text.
Screenshots of every tab (desktop and phone width) go to $SCREENSHOT_DIR when set.
"""
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_app_client import close, launch, server  # noqa: E402,F401  (the shared in-process app fixture)
from test_app_logic import EX, REF, TRAINED  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")

TIMEOUT = 90_000  # ms; CPU-only embedding on a busy 2-core machine


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path_factory.mktemp("shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--use-fake-ui-for-media-stream",
                                    "--use-fake-device-for-media-stream", "--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
    pg.goto(server)
    pg.wait_for_selector("#verify-a")
    yield pg
    ctx.close()
    assert not errors, errors


def upload(page, elem_id, path):
    page.locator(f"#{elem_id} input[type=file]").first.set_input_files(str(path))
    # the player (waveform + controls) replaces the drop zone once the upload lands
    page.locator(f"#{elem_id} [data-testid='upload-text']").wait_for(state="detached")


def open_tab(page, name):
    page.get_by_role("tab", name=name).click()


def enroll_one(page, name, clip):
    """Enroll ``name`` from one uploaded clip on the Enroll & identify tab."""
    open_tab(page, "Enroll & identify")
    page.fill("#enroll-name textarea, #enroll-name input", name)
    page.locator("#enroll-clips input[type=file]").set_input_files(str(clip))
    page.locator("#enroll-clips [data-testid='upload-text']").wait_for(state="detached")
    page.click("#enroll-btn")
    page.locator("#gallery-table td.spk", has_text=name).wait_for()
    # the clip list empties in a step after the table updates: wait for it, as a person would see it, before the
    # next upload (uploading in between lost the race on a slow CI machine and the new file was cleared)
    page.locator("#enroll-clips [data-testid='upload-text']").wait_for()


def test_verify_by_upload(page, shots):
    page.screenshot(path=str(shots / "verify-empty.png"), full_page=True)
    assert not page.locator("#verify-plot").is_visible()   # no blank chart frame before a result
    upload(page, "verify-a", EX / "so0049_a.wav")
    upload(page, "verify-b", EX / "so0049_b.wav")
    page.click("#verify-btn")
    decision = page.locator("#verify-decision .verdict")
    decision.wait_for()
    text = decision.inner_text()
    assert re.search(r"Same speaker|Different speakers", text)
    assert re.search(r"(cosine|AS-norm) score", page.locator("#verify-decision").inner_text())
    assert "so0049_b.wav" in page.locator("#verify-facts").inner_text()
    page.locator("#verify-facts table").wait_for()
    page.locator("#verify-plot svg").wait_for()
    page.screenshot(path=str(shots / "verify-result.png"), full_page=True)

    # moving the threshold re-decides from the same score
    score = float(re.search(r"(?:cosine|AS-norm) score ([-0-9.]+)",
                            page.locator("#verify-decision").inner_text())[1])
    box = page.locator("#verify-threshold input[type=number]")
    lo = float(box.get_attribute("min"))
    steps = [(round(score - 0.02, 2), "Same speaker")] if score - 0.02 >= lo else []
    if score < float(box.get_attribute("max")) - 0.03:  # (an untrained model scores everything near 1)
        steps.append((round(score + 0.02, 2), "Different speakers"))  # the slider's step is 0.01
    assert steps
    for value, expected in steps:
        box.fill(f"{value:.2f}")
        box.press("Enter")
        page.locator("#verify-decision .score", has_text=f"threshold {value:.3f}").wait_for(
            timeout=15_000)
        assert expected in page.locator("#verify-decision .verdict").inner_text()

    # a new clip B drops the old pair's result; the threshold then has nothing to re-decide
    page.locator("#verify-b button[aria-label='Clear']").first.click()
    page.locator("#verify-decision", has_text="Clips changed").wait_for()
    assert page.locator("#verify-decision .verdict").count() == 0
    page.locator("#verify-plot").wait_for(state="hidden")   # (hidden by a chained event, a moment later)
    upload(page, "verify-b", EX / "so2242_a.wav")
    box.fill(f"{steps[0][0] - 0.5:.2f}")
    box.press("Enter")
    page.wait_for_timeout(1500)
    assert page.locator("#verify-decision .verdict").count() == 0
    # an example fills both clips and shows its result, which stays
    page.get_by_text("Different speakers · LibriSpeech").click()
    page.locator("#verify-facts", has_text="ls3240_a.wav").wait_for()
    page.wait_for_timeout(1500)
    assert page.locator("#verify-decision .verdict").count() == 1


def test_cached_example(page):
    page.get_by_text("Different speakers · LibriSpeech").click()
    page.locator("#verify-facts", has_text="ls3240_a.wav").wait_for()
    assert re.search(r"Same speaker|Different speakers",
                     page.locator("#verify-decision .verdict").inner_text())
    page.locator("#verify-plot svg").wait_for()
    # the example's clips are now in the inputs
    page.locator("#verify-a [data-testid='upload-text']").wait_for(state="detached")
    # both LibriSpeech clips hold about 4 s of speech: read against the long calibration pairs, with each clip's
    # words' length in its facts (checkpoints calibrated before session 13 have no long pairs to read against)
    assert "(words 4.0 s)" in page.locator("#verify-facts").inner_text()
    if TRAINED and not os.environ.get("SPEAKER_TEST_CHECKPOINTS"):
        assert "Both clips hold at least 3 s of speech" in page.locator("#verify-decision .long-pair").inner_text()
        # under a lowered slider the long-pair threshold is offered; one click puts it on the slider, which
        # re-decides, and the offer then goes away (at the session-37 default's own threshold it is not stricter)
        box = page.locator("#verify-threshold input[type=number]")
        box.fill(f"{float(box.get_attribute('min')):.2f}")
        box.press("Enter")
        button = page.locator("#verify-stricter")
        button.wait_for()
        value = re.search(r"\(([-0-9.]+)\)", button.inner_text())[1]
        button.click()
        page.locator("#verify-decision .score", has_text=f"threshold {float(value):.3f}").wait_for()
        button.wait_for(state="hidden")


def test_record_with_fake_microphone_and_enroll_then_identify(page, shots):
    open_tab(page, "Enroll & identify")
    page.locator("#gallery-table .empty-state").wait_for()
    page.screenshot(path=str(shots / "enroll-empty.png"), full_page=True)
    page.fill("#enroll-name textarea, #enroll-name input", "Mic Tester")
    rec = page.locator("#enroll-record")
    rec.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(3000)  # Chromium's fake device plays a beep tone
    rec.locator("button.stop-button").click()
    # once stopped, the recording is uploaded and a player appears
    rec.locator("audio[data-testid^='audio-player']").wait_for(state="attached")
    page.wait_for_timeout(1000)
    page.click("#enroll-btn")
    status = page.locator("#enroll-status .status")
    status.wait_for()
    assert "Mic Tester" in status.inner_text()
    page.locator("#gallery-table td.spk", has_text="Mic Tester").wait_for()
    # an enrollment empties the recorder and the clip list, so the next speaker's clips stand alone
    rec.locator("audio[data-testid^='audio-player']").wait_for(state="detached")
    rec.get_by_role("button", name="Record", exact=True).wait_for()

    # a second speaker from uploaded files, then identify an uploaded clip
    page.fill("#enroll-name textarea, #enroll-name input", "Ref 40")
    page.locator("#enroll-clips input[type=file]").set_input_files(
        [str(REF / "librispeech-40_1.flac"), str(REF / "librispeech-40_2.flac")])
    page.locator("#enroll-clips [data-testid='upload-text']").wait_for(state="detached")
    page.click("#enroll-btn")
    page.locator("#gallery-table td.spk", has_text="Ref 40").wait_for()
    assert "Enrolled from 2 clips" in page.locator("#enroll-status .status").inner_text()
    page.locator("#enroll-clips [data-testid='upload-text']").wait_for()
    upload(page, "identify-audio", REF / "librispeech-40_3.flac")
    page.click("#identify-btn")
    verdict = page.locator("#identify-decision .verdict")
    verdict.wait_for()
    assert verdict.inner_text().strip()
    page.locator("#identify-plot .rank-row").first.wait_for()
    assert "Ref 40" in page.locator("#identify-plot").inner_text()   # both speakers ranked
    page.screenshot(path=str(shots / "enroll-identify.png"), full_page=True)

    open_tab(page, "Voice map")  # opening the tab draws the map
    page.locator("#map-plot img").wait_for()
    page.locator("#map-plot [data-testid='status-tracker'].hide").wait_for(state="attached")
    page.click("#map-btn")
    page.wait_for_timeout(300)
    page.locator("#map-plot [data-testid='status-tracker'].hide").wait_for(state="attached")
    page.screenshot(path=str(shots / "voice-map.png"), full_page=True)


def test_an_unknown_voice_can_be_sent_to_enrollment(page):
    """Identify answers "unknown speaker" (the threshold at its top): one click puts that clip in the enroll list."""
    enroll_one(page, "Only One", REF / "librispeech-40_1.flac")
    upload(page, "identify-audio", REF / "cv-tw-a84d1065_1.flac")
    box = page.locator("#identify-threshold input[type=number]")
    box.fill(box.get_attribute("max"))
    box.press("Enter")
    assert not page.locator("#identify-to-enroll").is_visible()
    page.click("#identify-btn")
    page.locator("#identify-decision .verdict", has_text="Unknown speaker").wait_for()
    page.click("#identify-to-enroll")
    page.locator("#enroll-clips", has_text="cv-tw-a84d1065_1").wait_for()   # (name and extension: two elements)


def test_model_change_moves_both_thresholds(page):
    """Picking another model puts its calibrated threshold on the Verify and the Identify slider alike."""
    verify_box = page.locator("#verify-threshold input[type=number]")
    before = verify_box.input_value()   # read before the change: read after, it may already be the new value
    page.get_by_label("Model").click()
    page.locator("[role=option][aria-selected=false]").first.click()   # any model but the current one
    page.wait_for_function("v => document.querySelector('#verify-threshold input[type=number]').value != v",
                           arg=before)
    after = verify_box.input_value()
    assert float(after) != float(before)
    open_tab(page, "Enroll & identify")
    page.locator("#identify-threshold input[type=number]").wait_for()
    page.wait_for_function("v => document.querySelector('#identify-threshold input[type=number]').value == v",
                           arg=after)


def test_script_in_a_name_stays_text(page, shots):
    open_tab(page, "Enroll & identify")
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>" + "Z" * 10
    page.fill("#enroll-name textarea, #enroll-name input", evil)
    page.locator("#enroll-clips input[type=file]").set_input_files(str(EX / "so0981_a.wav"))
    page.locator("#enroll-clips [data-testid='upload-text']").wait_for(state="detached")
    page.click("#enroll-btn")
    cell = page.locator("#gallery-table td.spk").first
    cell.wait_for()
    assert "<img src=x" in cell.inner_text()  # shown literally...
    assert page.locator("#gallery-table img, #enroll-status img").count() == 0  # ...never parsed
    # the long-name layout does not overflow the page
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280
    page.screenshot(path=str(shots / "long-html-name.png"), full_page=True)


def test_gallery_export_clear_import(page, tmp_path):
    """Export, clear and import back in the browser. A clear or an import unticks its checkbox afterwards, so a
    second click cannot wipe or replace the gallery without asking again."""
    enroll_one(page, "Keep Me", REF / "librispeech-40_1.flac")
    # a refused enrollment (the name is taken) replaces the old "Enrolled" line; the table shows no error
    page.locator("#enroll-clips input[type=file]").set_input_files(str(REF / "librispeech-40_2.flac"))
    page.locator("#enroll-clips [data-testid='upload-text']").wait_for(state="detached")
    page.click("#enroll-btn")
    page.locator("#enroll-status .status.failed", has_text="Nothing was enrolled").wait_for()
    assert page.locator("#gallery-table .error").count() == 0
    page.get_by_text("Manage the gallery").click()
    page.click("#gallery-export-btn")
    link = page.locator("#gallery-export a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "gallery.json"
    download.value.save_as(saved)
    assert "Keep Me" in saved.read_text()

    confirm = page.locator("#gallery-confirm input[type=checkbox]")
    confirm.check()
    page.click("#gallery-clear")
    page.locator("#gallery-status .status", has_text="Cleared the gallery (1 speaker deleted)").wait_for()
    page.locator("#gallery-table .empty-state").wait_for()
    page.wait_for_function("() => !document.querySelector('#gallery-confirm input[type=checkbox]').checked")
    page.click("#gallery-clear")   # not ticked again: refused with a message
    page.get_by_text("Tick 'Yes, delete every speaker'").first.wait_for()
    page.locator("#gallery-status .status.failed", has_text="The gallery is unchanged").wait_for()
    page.click("#gallery-export-btn")   # an empty gallery: nothing to export, and no stale file offered
    page.locator("#gallery-status .status.failed", has_text="Nothing was exported").wait_for()
    assert page.locator("#gallery-export a").count() == 0

    page.locator("#gallery-import input[type=file]").set_input_files(str(saved))
    page.locator("#gallery-import [data-testid='upload-text']").wait_for(state="detached")
    page.locator("#gallery-replace input[type=checkbox]").check()
    page.click("#gallery-import-btn")
    page.locator("#gallery-table td.spk", has_text="Keep Me").wait_for()
    page.wait_for_function("() => !document.querySelector('#gallery-replace input[type=checkbox]').checked")
    page.locator("#gallery-import [data-testid='upload-text']").wait_for()

    # rename: pick the speaker, type the new name; the table and the chooser follow, the name box empties
    page.locator("#gallery-speaker input").click()
    page.get_by_role("option", name="Keep Me").click()
    page.fill("#gallery-new-name textarea, #gallery-new-name input", "Kept <b>Me</b>")
    page.click("#gallery-rename-btn")
    page.locator("#gallery-table td.spk", has_text="Kept <b>Me</b>").wait_for()   # shown as text, escaped
    page.locator("#gallery-status .status", has_text="Renamed").wait_for()
    page.wait_for_function("() => document.querySelector('#gallery-new-name textarea, #gallery-new-name input')"
                           ".value === ''")


def test_about_and_phone_width(page, shots):
    open_tab(page, "About")
    page.get_by_text("How scores work").wait_for()
    assert page.get_by_text("biometric data").count() >= 1
    page.screenshot(path=str(shots / "about.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    for tab, name in [("Verify", "verify"), ("Enroll & identify", "enroll"),
                      ("Voice map", "map"), ("About", "about")]:
        open_tab(page, tab)
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)
        overflow = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                         && e.offsetParent !== null)
            .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)""")
        assert page.evaluate("document.documentElement.scrollWidth") <= 400, (tab, overflow)
    # the model card's headers and numbers stay whole on a phone (its tables scroll sideways instead)
    heights = page.evaluate("[...document.querySelectorAll('#model-card th')].map(e => e.getBoundingClientRect().height)")
    assert heights and max(heights) <= 1.5 * min(heights), heights


def test_examples_survive_file_cleanup(browser, tmp_path_factory):
    """With a short keep_files_seconds the app deletes old uploads; the examples, served from assets/, still
    load and score after several cleanups."""
    demo, url = launch(tmp_path_factory, keep_files_seconds=2)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        pg = ctx.new_page()
        pg.set_default_timeout(TIMEOUT)
        pg.goto(url)
        pg.wait_for_selector("#verify-a")
        pg.wait_for_timeout(5000)   # several cleanup rounds
        pg.get_by_text("Different speakers · LibriSpeech").click()
        pg.locator("#verify-facts", has_text="ls3240_a.wav").wait_for()
        pg.locator("#verify-decision .verdict").wait_for()
        pg.locator("#verify-a audio, #verify-a [data-testid^='waveform']").first.wait_for(state="attached")
    finally:
        ctx.close()
        close(demo)
