"""What the app shows: HTML fragments, score plots and the model card, built from plain values.

No Gradio here and no state: every function takes numbers, dicts or a model and returns an HTML/Markdown string
or a matplotlib figure. Everything user-supplied is escaped (speaker names through ``gallery.display_name``).
"""
from __future__ import annotations

import html

import numpy as np

from .api import Recognizer
from .gallery import Gallery, display_name
from .scoring import DEFAULT_THRESHOLD, LONG_PAIR_SECONDS, calibration_samples, voiceprint_samples

GREEN, RED, GREY = "#1a7f37", "#cf222e", "#57606a"


def facts_html(facts: list[dict]) -> str:
    rows = []
    for f in facts:
        warn_html = "".join(f"<li>⚠️ {html.escape(w)}</li>" for w in f["warnings"]) or \
            "<li class='ok'>✓ no quality problems found</li>"
        rows.append(
            "<tr>"
            f"<td class='clipname'>{html.escape(str(f['clip']))}</td>"
            f"<td data-label='Duration'>{f['duration_s']:.1f} s"
            + (f" <small>(of {f['original_duration_s']:.0f} s)</small>" if f["truncated"] else "") + "</td>"
            f"<td>{f['sample_rate'] / 1000:g} kHz</td>"
            f"<td data-label='Speech'>{f['speech_fraction']:.0%}"
            + (f" <small>(words {f['speech_s']:.1f} s)</small>" if "speech_s" in f else "") + "</td>"
            f"<td><ul class='warnings'>{warn_html}</ul></td></tr>")
    return ("<table class='facts'><thead><tr><th>Clip</th><th>Duration</th><th>Sample rate</th>"
            "<th>Speech</th><th>Quality</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _tail_rates(tgt, non, score: float) -> tuple[float, float] | None:
    tgt, non = np.asarray(tgt, dtype=np.float64), np.asarray(non, dtype=np.float64)
    if tgt.size < 2 or non.size < 2:
        return None
    return float(np.mean(tgt < score)), float(np.mean(non >= score))


def _long_seconds(long: dict) -> float:
    return float(long.get("min_speech_s", LONG_PAIR_SECONDS))   # calibration_samples has checked it is a number


def _reading(d: dict, tgt, non, score: float, threshold: float) -> tuple[float, float, float, float, int, int]:
    """A score read against calibration samples ``tgt``/``non`` described by ``d``: (share of ``tgt`` below the
    score, share of ``non`` at or above it, share of ``non`` the threshold accepts, share of ``tgt`` it rejects,
    and the numbers of comparisons: ``d``'s counts, since the stored scores may be a sample)."""
    tgt, non = np.asarray(tgt, dtype=np.float64), np.asarray(non, dtype=np.float64)
    below_t, above_n = _tail_rates(tgt, non, score) or (0.0, 0.0)
    n_t, n_n = (d[k] if isinstance(d.get(k), int) else x.size for k, x in (("n_target", tgt), ("n_nontarget", non)))
    return below_t, above_n, float(np.mean(non >= threshold)), float(np.mean(tgt < threshold)), n_t, n_n


def _long_pairs_html(long: dict, tgt, non, score: float, threshold: float) -> str:
    """For a long pair: its score read against the dev pairs as long as it, and what the threshold does to them."""
    below_t, above_n, fa, fr, n_t, n_n = _reading(long, tgt, non, score, threshold)
    return (f"<p class='explain long-pair'>Both clips hold at least {_long_seconds(long):g} s of speech, and long "
            "recordings score higher for every pair. Among held-out calibration pairs this long "
            f"({n_t:,} same-speaker"
            + (f" from {long['target_speakers']} people" if isinstance(long.get("target_speakers"), int) else "")
            + f", {n_n:,} "
            f"different-speaker), <b>{below_t:.0%}</b> of the same-speaker pairs scored lower than {score:.2f} and "
            f"<b>{above_n:.1%}</b> of the different-speaker pairs scored {score:.2f} or higher. This threshold "
            f"({threshold:.2f}) accepts <b>{fa:.0%}</b> of those different-speaker pairs and rejects {fr:.0%} of the "
            "same-speaker ones: raise it for a stricter decision on long recordings.</p>")


SCALE_LABEL = {"cosine": "cosine score", "as-norm": "AS-norm score"}


def decision_html(score: float, threshold: float, same: bool, cal: dict | None = None,
                  labels: tuple[str, str] = ("Same speaker", "Different speakers"),
                  extra_html: str = "", scale: str = "cosine", min_speech: float | None = None) -> str:
    """The verdict, the score and what it means on the calibration trials (``min_speech``: the pair's shorter
    clip's seconds of speech; a long pair is read against the long calibration pairs when the checkpoint has them)."""
    colour = GREEN if same else RED
    icon = "✔" if same else "✘"
    text = html.escape(labels[0] if same else labels[1])
    margin = score - threshold
    explain = ""
    tgt, non, long = calibration_samples(cal or {}, min_speech)
    rates = _tail_rates(tgt, non, score)
    if long is not None and rates is not None:
        explain = _long_pairs_html(long, tgt, non, score, threshold)
    elif rates is not None:
        below_t, above_n = rates
        explain = (f"<p class='explain'>On this model's held-out calibration trials, "
                   f"<b>{below_t:.0%}</b> of same-speaker pairs scored lower than {score:.2f}, and "
                   f"<b>{above_n:.1%}</b> of different-speaker pairs scored {score:.2f} or higher.</p>")
    return (f"<div class='decision' style='border-color:{colour}'>"
            f"<div class='verdict' style='color:{colour}'>{icon} {text}</div>"
            f"<div class='score'>{SCALE_LABEL.get(scale, 'score')} <b>{score:.3f}</b> · threshold {threshold:.3f} · "
            f"margin {margin:+.3f}</div>{explain}{extra_html}</div>")


def voiceprint_html(cal: dict | None, score: float, threshold: float) -> str:
    """What an Identify score means, from the checkpoint's clip-against-voiceprint calibration trials ("" when it
    has none)."""
    samples = voiceprint_samples(cal or {})
    if samples is None:
        return ""
    tgt, non, vp = samples
    below_t, above_n, passing, _, n_t, n_n = _reading(vp, tgt, non, score, threshold)
    clips = vp.get("clips_per_print") if isinstance(vp.get("clips_per_print"), int) else 3
    return (f"<p class='explain voiceprints'>Against {clips}-clip voiceprints of held-out speakers, "
            f"<b>{below_t:.0%}</b> of their own clips scored lower than {score:.2f}, and <b>{above_n:.1%}</b> of "
            f"other people's clips scored {score:.2f} or higher ({n_t:,} and {n_n:,} comparisons). This "
            f"threshold lets <b>{passing:.0%}</b> of other people's clips pass a voiceprint: raise it when a "
            "stranger must not pass as someone enrolled.</p>")


def empty_html(message: str) -> str:
    return f"<div class='empty-state'>{html.escape(message)}</div>"


def failed_html(what: str) -> str:
    """The line that replaces a refused request's old output; the error notice says why."""
    return f"<div class='status failed'>✘ {html.escape(what)}: the message above says why.</div>"


def _figure(w=7.0, h=3.2):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def score_plot(score: float, threshold: float, cal: dict | None, scale: str = "cosine",
               min_speech: float | None = None):
    """The score on the checkpoint's same- and different-speaker score distributions (for a long pair, those of
    the long calibration pairs: see ``decision_html``)."""
    # 5.2 inches wide with 11-12 pt text: a phone shows the PNG at about 330 px, where text stays legible
    fig = _figure(5.2, 2.9)
    ax = fig.add_subplot()
    ax.tick_params(labelsize=11)
    tgt, non, long = calibration_samples(cal or {}, min_speech)
    tgt, non = np.asarray(tgt, dtype=np.float64), np.asarray(non, dtype=np.float64)
    both = np.concatenate([tgt, non]) if tgt.size and non.size else np.zeros(0)
    lo = min([score, threshold] + ([float(np.percentile(both, 0.5))] if both.size else [-0.3]))
    hi = max([score, threshold] + ([float(np.percentile(both, 99.5))] if both.size else [1.0]))
    pad = max(0.03, 0.05 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    if scale == "cosine":
        lo, hi = max(-1.0, lo), min(1.0, hi)
    bins = np.linspace(lo, hi, 61)
    if tgt.size and non.size:
        # One filled outline per histogram, not 60 bar patches: they took about half of the handler's time.
        ax.hist(np.clip(non, lo, hi), bins=bins, density=True, alpha=0.55, color=RED, histtype="stepfilled",
                label="different speakers")
        ax.hist(np.clip(tgt, lo, hi), bins=bins, density=True, alpha=0.55, color=GREEN, histtype="stepfilled",
                label="same speaker")
    else:
        ax.text(0.5, 0.6, "this checkpoint carries no calibration scores",
                ha="center", transform=ax.transAxes, color=GREY)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.5,
               label=f"threshold {threshold:.2f}")
    ax.axvline(score, color="#0969da", linewidth=3, label=f"this pair {score:.2f}")
    ax.set_xlim(lo, hi)
    ax.set_yticks([])
    ax.set_xlabel(SCALE_LABEL.get(scale, "score"), fontsize=11)
    ax.set_title("This score against the model's calibration trials" if long is None else
                 f"Against the calibration pairs with ≥ {_long_seconds(long):g} s of speech each", fontsize=12,
                 loc="left")
    fig.legend(loc="outside lower center", ncol=2, fontsize=11, frameon=False)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return fig


def ranking_plot(ranking: list[dict], threshold: float, scale: str = "cosine"):
    n = max(1, len(ranking))
    fig = _figure(5.2, 1.5 + 0.5 * n)   # sized for a phone, as score_plot
    ax = fig.add_subplot()
    ax.tick_params(labelsize=11)
    if not ranking:
        ax.text(0.5, 0.5, "The gallery is empty.", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    names = [r["speaker"] if len(r["speaker"]) <= 20 else r["speaker"][:19] + "…" for r in ranking]
    scores = [r["score"] for r in ranking]
    colours = [GREEN if (i == 0 and s >= threshold) else ("#8c959f" if s < threshold else "#4ac26b")
               for i, s in enumerate(scores)]
    y = np.arange(len(ranking))[::-1]
    if scale == "cosine":
        lo, hi = min(0.0, min(scores) - 0.05), 1.12
    else:
        top = max(max(scores), threshold)
        lo, hi = min(0.0, min(scores) - 0.3), top + 0.15 * max(1.0, top - min(0.0, min(scores)))
    ax.barh(y, scores, color=colours, height=0.6)
    ax.set_yticks(y, names, fontsize=11)
    for yi, s in zip(y, scores):
        ax.text(max(s, 0) + 0.01 * (hi - lo), yi, f"{s:.2f}", va="center", fontsize=11)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.2f}")
    ax.set_xlim(lo, hi)
    ax.set_xlabel(f"{SCALE_LABEL.get(scale, 'score')} with the voiceprint", fontsize=11)
    ax.set_title(f"Top {len(ranking)} match{'es' if len(ranking) != 1 else ''}", fontsize=12,
                 loc="left")
    fig.legend(loc="outside lower right", fontsize=11, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def gallery_html(gallery: Gallery) -> str:
    rows = gallery.speakers()
    if not rows:
        return empty_html("No speakers enrolled yet. Enroll one with a name and a few clips.")
    body = "".join(
        f"<tr><td class='spk'>{display_name(r.name)}</td><td>{r.clips}</td>"
        f"<td>{html.escape(r.created[:10])}</td><td>{html.escape(r.updated[:16].replace('T', ' '))}</td></tr>"
        for r in rows)
    model = html.escape(rows[0].model)
    return (f"<table class='gallery'><thead><tr><th>Speaker</th><th>Clips</th><th>Enrolled</th>"
            f"<th>Updated (UTC)</th></tr></thead><tbody>{body}</tbody></table>"
            f"<p class='gallery-foot'>{len(rows)} speaker{'s' if len(rows) != 1 else ''} · "
            f"model {model}</p>")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _pct(v) -> str:
    try:
        return f"{float(v):.2f} %"
    except (TypeError, ValueError):
        return "n/a"


def model_card_markdown(model: Recognizer, model_id: str) -> str:
    """Architecture, training data and dev EER from the checkpoint's metadata (what is there)."""
    meta = dict(model.meta or {})
    lines = [f"### Model card: {html.escape(model.name)}", "", "| property | value |", "|---|---|"]
    members = getattr(model, "members", None)
    if members:
        n_params = sum(p.numel() for p in model.parameters())
        parts = " + ".join(f"{w:g} × {html.escape(m.name)}" for m, w in members)
        lines += [f"| architecture | score fusion: {parts} (its cosine is the weighted sum of the members' cosines); "
                  f"{model.emb_dim}-dim joint embedding |",
                  f"| parameters | {n_params / 1e6:.2f} M in {len(members)} networks (their cards: choose them "
                  "in the model selector) |"]
    else:
        cfg = model.config
        n_params = sum(p.numel() for p in model.net.parameters())
        enc = type(cfg.encoder).__name__.replace("Config", "")
        n_mels = getattr(cfg.features, "n_mels", None) or getattr(cfg.features, "nfilt", None)
        lines += [f"| architecture | {html.escape(cfg.name)}: {enc} encoder → statistics pooling → "
                  f"{model.emb_dim}-dim speaker embedding |",
                  f"| parameters | {n_params / 1e6:.2f} M |"]
        if n_mels:
            lines.append(f"| input | 16 kHz mono audio, {n_mels} log-mel bands |")
    edges = getattr(model, "edges", None)
    if edges:
        found = {"words": " (edges found by the word detector)"}.get(edges.get("detector"), "")
        lines.append(f"| silence around the words | each edge cut to {edges['keep']:g} s{found}, then the same "
                     f"{edges['pad']:g} s of {edges['db']:g} dBFS noise on both sides, before embedding |")
    lines.append(f"| checkpoint id | `{html.escape(model_id)}` |")
    cal = meta.get("calibration") if isinstance(meta.get("calibration"), dict) else {}
    if cal.get("threshold") is not None:
        lines.append(f"| calibrated threshold | {float(cal['threshold']):.3f} ({SCALE_LABEL.get(model.scale, 'score')}, "
                     "at the dev EER point) |")
    else:
        lines.append(f"| threshold | {DEFAULT_THRESHOLD} (default: this checkpoint carries no calibration) |")
    if model.norm is not None:
        lines.append(f"| score normalisation | AS-norm: top {model.norm.top_k} of a cohort of "
                     f"{model.norm.cohort.shape[0]} training-speaker voiceprints |")
    if cal.get("eer") is not None:
        lines.append(f"| pooled dev EER | {_pct(100 * float(cal['eer']))} |")
    recipe = meta.get("recipe") if isinstance(meta.get("recipe"), dict) else {}
    epochs_label = "trained epochs (last warm-restart stage)" if recipe.get("init") else "trained epochs"
    rows = (("trained_epochs", epochs_label), ("created", "created"), ("source", "file"))
    parts = meta.get("averaged_from")
    if isinstance(parts, list) and parts:
        # the epochs and recipe stored are the first ingredient's, so say what the weights really are
        lines.append(f"| made as | uniform weight average of {len(parts)} checkpoints: "
                     f"{html.escape(', '.join(str(x) for x in parts))} |")
        rows = (("created", "created"),)
    for key, label in rows:
        if key in meta and isinstance(meta[key], (str, int, float)):
            lines.append(f"| {label} | {_fmt(meta[key])} |")
    if recipe.get("loss"):
        lines.append(f"| loss | {_fmt(recipe['loss'])} |")
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    train, dev = data.get("train"), data.get("dev")
    if isinstance(train, dict) and train:
        lines += ["", "**Training data** (speaker-disjoint split: dev speakers are never trained on)", "",
                  "| corpus | train spk | train min | dev spk |", "|---|---|---|---|"]
        for corpus, t in train.items():
            if not isinstance(t, dict):
                continue
            d = dev.get(corpus, {}) if isinstance(dev, dict) else {}
            mins = t.get("minutes")
            mins = f"{float(mins):.0f}" if isinstance(mins, (int, float)) else ""
            lines.append(f"| {html.escape(str(corpus))} | {_fmt(t.get('speakers', ''))} | "
                         f"{mins} | {_fmt(d.get('speakers', 0) if isinstance(d, dict) else '')} |")
    dev_eer = meta.get("dev_eer") if isinstance(meta.get("dev_eer"), dict) else {}
    per = dev_eer.get("per_corpus") if isinstance(dev_eer.get("per_corpus"), dict) else {}
    if per or dev_eer.get("pooled") is not None:
        ci = dev_eer.get("ci95") if isinstance(dev_eer.get("ci95"), dict) else {}

        def interval(key) -> str:
            v = ci.get(key)
            ok = isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
            return f"{float(v[0]):.1f}–{float(v[1]):.1f} %" if ok else ""

        lines += ["", "**Equal error rate on held-out dev speakers** (lower is better)", ""]
        lines += ["| trial set | EER | 95 % interval |", "|---|---|---|"] if ci else ["| trial set | EER |", "|---|---|"]
        row = (lambda name, key, v: f"| {name} | {_pct(v)} | {interval(key)} |") if ci else \
              (lambda name, key, v: f"| {name} | {_pct(v)} |")
        for k, v in per.items():
            lines.append(row(html.escape(str(k)), k, v))
        if dev_eer.get("mean_over_corpora") is not None:
            lines.append(row("mean over corpora", None, dev_eer["mean_over_corpora"]))
        if dev_eer.get("pooled") is not None:
            lines.append(row("pooled", "pooled", dev_eer["pooled"]))
        if isinstance(dev_eer.get("trials"), str):
            lines += ["", f"Trials: {html.escape(dev_eer['trials'])}."]
        if ci:
            lines += ["", f"The dev split has few speakers per corpus, so each EER is uncertain: the interval "
                          f"resamples speakers ({html.escape(str(ci.get('method', 'bootstrap')))})."]
    by = dev_eer.get("at_threshold_by_speech")
    if isinstance(by, list) and by and cal.get("threshold") is not None:
        pct = lambda v: f"{float(v):.1f} %" if isinstance(v, (int, float)) else "–"
        lines += ["", "**Errors at the calibrated threshold by length of speech** (the shorter clip of each dev "
                      "pair; long recordings score higher for every pair, so the one threshold accepts more "
                      "different speakers among them)", "",
                  "| speech in the shorter clip | false accepts | different-speaker pairs | false rejects | "
                  "same-speaker pairs |", "|---|---|---|---|---|"]
        count = lambda v: f"{v:,}" if isinstance(v, int) else _fmt(v if v is not None else "")
        for r in by:
            if isinstance(r, dict):
                lines.append(f"| {html.escape(str(r.get('seconds', '')))} s | {pct(r.get('false_accept_pct'))} | "
                             f"{count(r.get('n_nontarget'))} | {pct(r.get('false_reject_pct'))} | "
                             f"{count(r.get('n_target'))} |")
    return "\n".join(lines)
