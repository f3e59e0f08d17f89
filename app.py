"""Speaker Recognition Studio: verify, enroll and identify, and see the voice space.

    python app.py          # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT apply)

This file only lays out components and wires events; the handlers are plain functions in
speaker_core/app_logic.py. Settings (checkpoint folder, gallery file, ...) come from the
environment, see that module's docstring. Runs unchanged as a Hugging Face Space.
"""
from __future__ import annotations

import logging
import os
import sys

import gradio as gr

from speaker_core import app_logic, views
from speaker_core.app_logic import EXAMPLES_DIR, MAX_UPLOAD_MB, TOP_K, Settings, Studio, example_paths, source_digest
from speaker_core.gallery import GalleryError
from speaker_core.views import empty_html

TITLE = "Speaker Recognition Studio"

CSS = """
.gradio-container {max-width: 1180px !important; margin: auto;}
.decision {border: 3px solid; border-radius: 10px; padding: 12px 16px; margin: 4px 0;}
.decision .verdict {font-size: 1.6em; font-weight: 700; overflow-wrap: anywhere;}
.decision .score {font-size: 1.05em; margin-top: 4px;}
.decision .explain {margin: 8px 0 0 0; opacity: .9;}
.empty-state {color: var(--body-text-color-subdued); font-style: italic; padding: 14px;
              border: 1px dashed var(--border-color-primary); border-radius: 8px; text-align: center;}
.score-plot {margin: 0 auto; padding: 6px 4px; max-width: 560px;}
.score-plot figcaption {font-weight: 600; margin-bottom: 4px;}
.score-plot svg {width: 100%; height: auto; display: block;}
.ranking {margin: 0; padding: 6px 4px;}
.ranking figcaption {font-weight: 600; margin-bottom: 6px;}
.rank-row {display: grid; grid-template-columns: minmax(0, 9em) 1fr 3.2em; gap: 8px; align-items: center;
           margin: 5px 0;}
.rank-name {overflow: hidden; text-overflow: ellipsis; white-space: nowrap;}
.rank-track {position: relative; height: 18px;}
.rank-bar {position: absolute; top: 0; bottom: 0; border-radius: 3px;}
.rank-thr {position: absolute; top: -3px; bottom: -3px; border-left: 2px dashed currentColor;}
.rank-score {text-align: right; font-variant-numeric: tabular-nums;}
.ranking .keys, .score-plot .keys {display: flex; flex-wrap: wrap; gap: 4px 16px; justify-content: center;
                                   margin-top: 4px;}
.ranking .swatch, .score-plot .swatch {display: inline-block; width: 18px; height: 10px; margin-right: 6px;
                                       vertical-align: middle;}
table.facts, table.gallery {width: 100%; border-collapse: collapse; font-size: .95em;}
table.facts, table.gallery {border: none !important;}
table.facts th, table.facts td, table.gallery th, table.gallery td {
    padding: 6px 8px; border: none !important; text-align: left; vertical-align: top;
    border-bottom: 1px solid var(--border-color-primary) !important;}
table.facts th, table.gallery th {font-weight: 600; background: var(--background-fill-secondary);}
td.clipname, td.spk {overflow-wrap: anywhere; word-break: break-word; max-width: 28ch;}
/* a file name and the speech figures stay readable beside a long warning, which wraps instead */
table.facts td.clipname {min-width: 14ch;}
table.facts td small {white-space: nowrap;}
ul.warnings {margin: 0; padding-left: 1.1em; list-style: none;}
ul.warnings li {margin: 0;}
.status {padding: 8px 12px; border-radius: 8px; overflow-wrap: anywhere;}
.status.ok {background: rgba(26, 127, 55, .12);}
.status.failed {background: rgba(207, 34, 46, .10);}
.gallery-foot {font-size: .85em; opacity: .75; margin-top: 4px; overflow-wrap: anywhere;}
.privacy {font-size: .9em; opacity: .85;}
.prose pre, .prose pre code {white-space: pre-wrap !important; overflow-wrap: anywhere;
                              max-width: 100%;}
.prose code {overflow-wrap: anywhere;}
/* the page's flex columns grow to their content, so the viewport bounds a wide table, which then scrolls */
#model-card table {display: block; max-width: calc(100vw - 64px); overflow-x: auto;}
/* numbers and headers never break mid-word ("25.4|0 %" on a phone): the table scrolls sideways instead */
#model-card td, #model-card th {overflow-wrap: normal !important; word-break: normal !important;}
#model-card th, #model-card td:not(:first-child) {white-space: nowrap;}
#model-card td:first-child + td:last-child {white-space: normal;}  /* the two-column property table wraps its values */
@media (max-width: 640px) {
  .decision .verdict {font-size: 1.3em;}
  /* on a phone each clip is a card: name, then duration and speech share, then its warnings full width */
  table.facts thead, table.facts td:nth-child(3) {display: none;}
  table.facts tr {display: block; border-bottom: 1px solid var(--border-color-primary);}
  table.facts td {display: inline-block; border-bottom: none !important; padding: 3px 8px;}
  table.facts td.clipname {display: block; max-width: none; min-width: 0; font-weight: 600;}
  table.facts td:last-child {display: block;}
  table.facts td[data-label]::before {content: attr(data-label) " "; opacity: .7;}
}
"""

HOW_SCORES_WORK = """
### How scores work
Each clip becomes a **speaker embedding**: a vector that the network learned to make similar for
the same voice and different for different voices, whatever is being said. The raw similarity is
the cosine of two embeddings (1: identical direction, 0: unrelated).

The shipped models report an **AS-norm score** instead: each clip is also compared with 750
voices from the training set, and the cosine is re-expressed as how many standard deviations it
lies above the clip's closest training voices (averaged over both clips). A clip that sounds like
everyone, because it is short, noisy or from an unusual microphone, then no longer looks like a
match for everyone. Around 0 means "as similar as a stranger who sounds alike"; same-speaker pairs
typically score a few units higher. `.nemo` imports and checkpoints without a cohort use the plain
cosine. The label under each result says which scale is in use.

The **threshold** turns a score into a decision. Its default is the checkpoint's *calibrated EER
threshold*: on held-out speakers the model was never trained on, it is the score where falsely
accepted different-speaker pairs and falsely rejected same-speaker pairs are equally frequent.
Raise it to reject impostors more strictly (more genuine pairs rejected), lower it for the
opposite. The Verify plot shows both score distributions from that calibration set, so a score of,
say, 2.4 can be read against them: how many same-speaker pairs scored lower, how many
different-speaker pairs scored higher.

**Quality matters.** Scores from very short (< 2 s), mostly silent or clipped clips are
unreliable; the app warns about each. **Noise or a different microphone in one clip only** cost the
most, and the app cannot yet tell either reliably: with noise 20 dB under the speech in one clip of
each held-out pair, the default rejected 23 % of same-speaker pairs, and with one clip muffled (its
sound above 2 kHz cut away, as by a cheap headset) 36 % (6 % with both clips clean). Record both
clips with the same microphone, in similar, quiet surroundings. Clips longer than 30 s are
truncated. A nearly silent clip is rejected outright, and so is a steady tone, hum or noise.
**Silence around the words** matters in practice: a recording holds more of it than a file cut to
the words. Both shipped models cut each
edge's silence to 0.2 s and pad every clip with the same 1.5 s of quiet noise before embedding, so
when one clip of a pair had 1.5 s of quiet before and after the words, the default fusion rejected
6.6 % of same-speaker pairs on held-out speakers (6.4 % without it; before session 25, when the
ECAPA-small member kept each clip's own silence: 30.5 %). The silence of a recording also tells its
room apart, which helps two clips from one sitting and not two from different days: the dev trials
are from one sitting per speaker, so the model card reports both.

**Long recordings.** One embedding of a long clip scores higher for every pair, the same speaker or
not, while the threshold was calibrated mostly on 1-3 s clips. So the default (and ECAPA-small alone) scores a clip
whose words last 4 s or more in parts of about 2 s, each with an equal share of the words (so that no part is
only a pause), and a pair gets the mean score over all pairs of parts. The model card above shows how
often the threshold errs on held-out pairs at each length of speech. For a pair whose clips both hold 3 s of
speech or more, the result reads the score against the held-out pairs that long and says what the threshold
does there; when a threshold that lets only 5 % of those different-speaker pairs pass is stricter than the
one in use, it says where that is, and a button puts it on the slider.

**Identification** compares a clip with each enrolled speaker's *voiceprint*: the normalised mean
of the embeddings of their enrollment clips (more clips, steadier voiceprint). If no voiceprint
scores above the threshold, the answer is *unknown speaker* (open-set rejection). The model card
above says how often, at the calibrated threshold, a held-out speaker's clip passes against their own
voiceprint and how often another person's clip does: raise the threshold when a stranger must not pass
as an enrolled speaker.

**Enrollment** checks that the clips agree: each new clip is scored against the speaker's other
clips, and one that scores under the threshold is flagged (it is still added), since another
person's clip would pull the voiceprint away. On held-out speakers enrolled from 3 clips, the
ecapa-small of the time this check was added flagged 6 % of their own clips and 87 % of clips of another
person of the same corpus.
"""

PRIVACY = """
### Privacy
Voiceprints are **biometric data**: they can identify a person by their voice. Enroll only people
who agreed to it, and delete a speaker when asked (*Delete*). Run locally, the gallery lives in one
SQLite file on this machine (`SPEAKER_GALLERY_PATH`, default `gallery.db`); nothing is sent anywhere.
On a public Hugging Face Space each browser session gets its own private in-memory gallery that
disappears when the session ends. Uploaded audio is only used to compute embeddings; the gallery
stores embeddings, never audio. Uploads and the files the app returns are deleted from the server an
hour after they were written, and when it stops. Exported gallery files contain voiceprints: keep
them private.
"""

API_HELP = """
### Using the API
Every action is also a public API endpoint (see *Use via API* below):
`/verify(audio_a, audio_b, model, threshold)` → JSON with `score`, `same_speaker`, `threshold`;
`/enroll(name, clips, recording, add_to_existing, model)`;
`/identify(audio, model, threshold, top_k)` → JSON with `speaker` (null when unknown), `score`,
`ranking`; `/voice_map(include_reference, model)`; plus `/delete_speaker`, `/clear_gallery`,
`/export_gallery`, `/import_gallery`. With Python:

```python
from gradio_client import Client, handle_file
client = Client("http://127.0.0.1:7860/")
result, *_ = client.predict(handle_file("a.wav"), handle_file("b.wav"), api_name="/verify")
print(result["score"], result["same_speaker"], result["threshold"])
```
"""


def build_demo(studio: Studio) -> gr.Blocks:
    models = studio.model_choices()
    default = studio.default_model()
    examples, example_labels = example_paths()
    # served from assets/ as they are: copies in Gradio's cache would go with delete_cache and break the examples
    gr.set_static_paths([str(EXAMPLES_DIR)])
    upload_first = dict(sources=["upload", "microphone"], type="filepath")
    mic_first = dict(sources=["microphone", "upload"], type="filepath")
    thr = dict(step=0.01, **studio.threshold_slider(default))

    with gr.Blocks(title=TITLE, delete_cache=studio.settings.delete_cache) as demo:
        gallery_state = gr.State(None, delete_callback=lambda g: g.close() if g else None)
        query_state = gr.State(None)

        gr.Markdown(f"# {TITLE}\nCompare two voices, enroll and identify speakers, and explore "
                    "the voice space. Speaker embeddings from NeMo-style SpeakerNet / ECAPA / "
                    "TitaNet models in plain PyTorch.")
        model_dd = gr.Dropdown(models, value=default, label="Model",
                               info="Shipped checkpoints plus any .pt / .nemo in checkpoints/",
                               interactive=True, allow_custom_value=False)

        with gr.Tabs(overflow_behavior="wrap"):
            # ---------------------------------------------------------------- Verify
            with gr.Tab("Verify", id="verify"):
                gr.Markdown("Are these two clips the same speaker? Record or upload two clips "
                            "(2-30 s of speech each, both in a quiet room, works best).")
                with gr.Row(equal_height=True):
                    audio_a = gr.Audio(label="Clip A", elem_id="verify-a", **upload_first)
                    audio_b = gr.Audio(label="Clip B", elem_id="verify-b", **upload_first)
                # outputs are created first (unrendered) so the examples can sit by the inputs
                v_decision = gr.HTML(empty_html("Add two clips and press Verify."),
                                     label="decision", elem_id="verify-decision", render=False)
                v_plot = gr.HTML(label="Score against the calibration distributions", render=False,
                                 visible=False, elem_id="verify-plot")
                v_facts = gr.HTML(label="clip_quality", elem_id="verify-facts", render=False)
                v_json = gr.JSON(label="Result", render=False)
                if examples:
                    gr.Examples(examples, inputs=[audio_a, audio_b],
                                outputs=[v_json, v_decision, v_plot, v_facts],
                                fn=studio.verify_example, cache_examples=True, cache_mode="lazy",
                                example_labels=example_labels,
                                label="Examples: real speakers never seen in training "
                                      "(assets/ATTRIBUTION.md)", api_visibility="private")
                with gr.Row(equal_height=True):
                    v_threshold = gr.Slider(label="Decision threshold", scale=3,
                                            elem_id="verify-threshold",
                                            info="Default: the model's calibrated EER threshold. "
                                                 "Moving it re-decides at once.", **thr)
                    verify_btn = gr.Button("Verify", variant="primary", scale=1, elem_id="verify-btn")
                v_decision.render()
                v_stricter = gr.Button("Use the stricter threshold for long recordings", visible=False,
                                       size="sm", elem_id="verify-stricter")
                v_facts.render()
                v_plot.render()
                with gr.Accordion("Result as JSON", open=False):
                    v_json.render()

            # ---------------------------------------------------------------- Enroll & identify
            with gr.Tab("Enroll & identify", id="gallery"):
                with gr.Row():
                    with gr.Column(min_width=300):
                        gr.Markdown("### Enroll a speaker\nOne or more clips of the same person. "
                                    "Three clips of 3 s or more give a steady voiceprint.")
                        e_name = gr.Textbox(label="Name", placeholder="e.g. Ada Lovelace",
                                            elem_id="enroll-name")
                        e_clips = gr.File(label="Clips (upload one or several)",
                                          file_count="multiple",
                                          file_types=["audio", ".m4a", ".webm", ".opus", ".mp4"],
                                          elem_id="enroll-clips")
                        e_record = gr.Audio(label="…and/or record one", elem_id="enroll-record",
                                            **mic_first)
                        e_add = gr.Checkbox(label="Add to an existing speaker", value=False)
                        enroll_btn = gr.Button("Enroll", variant="primary", elem_id="enroll-btn")
                        e_status = gr.HTML(label="status", elem_id="enroll-status")
                        with gr.Accordion("Enrollment result as JSON", open=False):
                            e_json = gr.JSON(label="Result")
                    with gr.Column(min_width=300):
                        gr.Markdown("### Identify a clip\nWho in the gallery is speaking? Below the "
                                    "threshold the answer is *unknown speaker*.")
                        i_audio = gr.Audio(label="Clip to identify", elem_id="identify-audio",
                                           **upload_first)
                        with gr.Row():
                            i_threshold = gr.Slider(label="Threshold", scale=2, elem_id="identify-threshold",
                                                    **thr)
                            i_topk = gr.Slider(1, 10, value=TOP_K, step=1, label="Top k", scale=1)
                        identify_btn = gr.Button("Identify", variant="primary",
                                                 elem_id="identify-btn")
                        i_decision = gr.HTML(empty_html("Enroll speakers, then add a clip and press Identify."),
                                             label="decision", elem_id="identify-decision")
                        i_plot = gr.HTML(label="Top matches", visible=False, elem_id="identify-plot")
                        i_to_enroll = gr.Button("Add this clip to “Enroll a speaker”", visible=False, size="sm",
                                                elem_id="identify-to-enroll")
                        with gr.Accordion("Identification result as JSON", open=False):
                            i_json = gr.JSON(label="Result")

                gr.Markdown("### Gallery")
                g_table = gr.HTML(empty_html("No speakers enrolled yet."), label="gallery",
                                  elem_id="gallery-table")
                g_status = gr.HTML(label="status", elem_id="gallery-status")
                with gr.Accordion("Manage the gallery: rename, delete, clear, export, import",
                                  open=False):
                    with gr.Row():
                        with gr.Column(min_width=260):
                            g_speaker = gr.Dropdown([], label="Speaker to rename or delete",
                                                    allow_custom_value=True, interactive=True,
                                                    elem_id="gallery-speaker")
                            g_new_name = gr.Textbox(label="New name", placeholder="e.g. Ada Lovelace",
                                                    elem_id="gallery-new-name")
                            with gr.Row():
                                rename_btn = gr.Button("Rename", elem_id="gallery-rename-btn")
                                delete_btn = gr.Button("Delete speaker", variant="stop")
                        with gr.Column(min_width=260):
                            g_confirm = gr.Checkbox(label="Yes, delete every speaker", value=False,
                                                    elem_id="gallery-confirm")
                            clear_btn = gr.Button("Clear gallery", variant="stop", elem_id="gallery-clear")
                    with gr.Row():
                        with gr.Column(min_width=260):
                            export_btn = gr.Button("Export gallery to a file", elem_id="gallery-export-btn")
                            g_export = gr.File(label="Exported gallery (JSON)", interactive=False,
                                               elem_id="gallery-export")
                        with gr.Column(min_width=260):
                            g_import = gr.File(label="Gallery file to import (JSON)",
                                               file_types=[".json"], elem_id="gallery-import")
                            g_replace = gr.Checkbox(label="Replace the current gallery",
                                                    value=False, elem_id="gallery-replace")
                            import_btn = gr.Button("Import", elem_id="gallery-import-btn")
                gr.Markdown("Voiceprints are biometric data: enroll only people who agreed to it. "
                            "See About → Privacy.", elem_classes="privacy")

            # ---------------------------------------------------------------- Voice map
            with gr.Tab("Voice map", id="map") as map_tab:
                gr.Markdown("A 2-D map (UMAP, or PCA when there are few points) of every enrolled "
                            "clip plus a bundled reference set of 8 speakers. Clips of one voice "
                            "should cluster; the star is your latest Identify query.")
                with gr.Row():
                    m_ref = gr.Checkbox(label="Include the reference speakers", value=True)
                    map_btn = gr.Button("Draw the voice map", variant="primary",
                                        elem_id="map-btn")
                m_plot = gr.Plot(label="Voice map", format="png", elem_id="map-plot",
                                 show_label=False)
                m_file = gr.File(label="Download the map (PNG)", interactive=False)
                with gr.Accordion("Map data as JSON", open=False):
                    m_json = gr.JSON(label="Points")

            # ---------------------------------------------------------------- About
            with gr.Tab("About", id="about"):
                about_card = gr.Markdown(studio.model_card(default), elem_id="model-card")
                gr.Markdown(HOW_SCORES_WORK)
                gr.Markdown(PRIVACY)
                gr.Markdown(API_HELP)
                gr.Markdown("Example and reference clips: LibriSpeech (CC BY 4.0), speechocean762 "
                            "(Apache-2.0), Mozilla Common Voice (CC0); details in "
                            "`assets/ATTRIBUTION.md`.")

        # ---------------------------------------------------------------- events
        gallery_out = [g_table, g_speaker, gallery_state]
        refresh = dict(fn=studio.show_gallery, inputs=[gallery_state], outputs=gallery_out,
                       api_visibility="private", show_progress="hidden")
        demo.load(**refresh)
        model_dd.change(studio.on_model_change, [model_dd],
                        [v_threshold, i_threshold, about_card, v_json, v_decision, v_plot, v_facts,
                         i_json, i_decision, i_plot],
                        api_visibility="private")

        # a new clip clears the old result; programmatic changes (an example, a reset) do not fire these
        gr.on([ev for a in (audio_a, audio_b) for ev in (a.upload, a.stop_recording, a.clear)],
              studio.on_verify_clip_change, None, [v_json, v_decision, v_plot, v_facts],
              api_visibility="private", show_progress="hidden")
        gr.on([i_audio.upload, i_audio.stop_recording, i_audio.clear], studio.on_identify_clip_change, None,
              [i_json, i_decision, i_plot], api_visibility="private", show_progress="hidden")
        verify_btn.click(studio.verify, [audio_a, audio_b, model_dd, v_threshold],
                         [v_json, v_decision, v_plot, v_facts], api_name="verify",
                         concurrency_id="model", show_progress_on=[v_decision]
                         ).failure(studio.verify_failed, None, [v_json, v_decision, v_plot, v_facts],
                                   api_visibility="private", show_progress="hidden")
        v_threshold.change(studio.redecide, [v_json, v_threshold],
                           [v_json, v_decision, v_plot, v_facts], api_visibility="private",
                           show_progress="hidden", trigger_mode="always_last")

        v_json.change(studio.stricter_button, v_json, v_stricter, api_visibility="private", show_progress="hidden")
        i_json.change(studio.enroll_offer, i_json, i_to_enroll, api_visibility="private", show_progress="hidden")
        i_to_enroll.click(studio.clip_to_enroll, [i_audio, e_clips], e_clips, api_visibility="private",
                          show_progress="hidden")
        v_stricter.click(studio.apply_stricter, v_json, v_threshold, api_visibility="private", show_progress="hidden")
        for result, plot in ((v_json, v_plot), (i_json, i_plot)):
            result.change(studio.result_plot_visibility, result, plot, api_visibility="private",
                          show_progress="hidden")

        enrolled = enroll_btn.click(studio.enroll, [e_name, e_clips, e_record, e_add, model_dd, gallery_state],
                                    [e_json, g_table, e_status, gallery_state], api_name="enroll",
                                    concurrency_id="model", show_progress_on=[e_status])
        enrolled.then(**refresh)
        enrolled.failure(studio.enroll_failed, None, e_status, api_visibility="private", show_progress="hidden")
        enrolled.success(studio.enrolled_inputs_cleared, None, [e_clips, e_record], api_visibility="private",
                         show_progress="hidden")
        identify_btn.click(studio.identify, [i_audio, model_dd, i_threshold, i_topk, gallery_state],
                           [i_json, i_decision, i_plot, query_state, gallery_state],
                           api_name="identify", concurrency_id="model", show_progress_on=[i_decision]
                           ).failure(studio.identify_failed, None, [i_json, i_decision, i_plot],
                                     api_visibility="private", show_progress="hidden")
        deleted = delete_btn.click(studio.delete_speaker, [g_speaker, gallery_state],
                                   [g_status, g_table, gallery_state], api_name="delete_speaker",
                                   show_progress_on=[g_status])
        deleted.then(**refresh)
        renamed = rename_btn.click(studio.rename_speaker, [g_speaker, g_new_name, gallery_state],
                                   [g_status, g_table, gallery_state], api_name="rename_speaker",
                                   show_progress_on=[g_status])
        renamed.then(**refresh)
        renamed.success(studio.renamed_input_cleared, None, g_new_name, api_visibility="private",
                        show_progress="hidden")
        cleared = clear_btn.click(studio.clear_gallery, [g_confirm, gallery_state],
                                  [g_status, g_table, gallery_state], api_name="clear_gallery",
                                  show_progress_on=[g_status])
        cleared.then(**refresh)
        cleared.success(studio.cleared_confirm_reset, None, g_confirm, api_visibility="private",
                        show_progress="hidden")
        export_btn.click(studio.export_gallery, [gallery_state], [g_export, g_status, gallery_state],
                         api_name="export_gallery", show_progress_on=[g_status]
                         ).failure(studio.export_failed, None, [g_export, g_status], api_visibility="private",
                                   show_progress="hidden")
        imported = import_btn.click(studio.import_gallery, [g_import, g_replace, model_dd, gallery_state],
                                    [g_status, g_table, gallery_state], api_name="import_gallery",
                                    show_progress_on=[g_status])
        imported.then(**refresh)
        for event in (deleted, renamed, cleared, imported):   # an old "done" must not stand beside a refusal
            event.failure(studio.gallery_unchanged, None, g_status, api_visibility="private",
                          show_progress="hidden")
        imported.success(studio.imported_inputs_cleared, None, [g_import, g_replace], api_visibility="private",
                         show_progress="hidden")
        map_io = dict(fn=studio.voice_map, inputs=[m_ref, model_dd, gallery_state, query_state],
                      outputs=[m_plot, m_file, m_json, gallery_state], concurrency_id="model")
        map_btn.click(**map_io, api_name="voice_map")
        map_tab.select(**map_io, api_visibility="private")  # draw when the tab opens

    demo.queue(max_size=64, default_concurrency_limit=2)
    return demo


def launch_kwargs() -> dict:
    """Arguments for demo.launch(); server name/port come from GRADIO_SERVER_NAME/PORT."""
    return dict(max_file_size=f"{MAX_UPLOAD_MB}mb", css=CSS, theme=gr.themes.Soft())


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        studio = Studio(Settings.from_env())
    except GalleryError as e:   # SPEAKER_GALLERY_PATH names something that is not a gallery: say so, touch nothing
        sys.exit(f"error: {e}")
    if studio.default_model():  # cached example results belong to one checkpoint's weights and one app version
        model_id = studio.models.model_id(None).replace("@", "-")
        code = source_digest(__file__, views.__file__, app_logic.__file__)
        os.environ.setdefault("GRADIO_EXAMPLES_CACHE",
                              os.path.join(".gradio", "cached_examples", f"{model_id}-{code}"))
    studio.warm_up(background=True)
    try:
        build_demo(studio).launch(**launch_kwargs())
    finally:
        studio.wait_warm(30)   # stopped during start-up: let numba finish instead of aborting the process


if __name__ == "__main__":
    main()
