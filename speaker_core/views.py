"""What the app shows: HTML fragments, score plots and the model card, built from plain values.

No Gradio here and no state: every function takes numbers, dicts or a model and returns an HTML/Markdown string
(the score plot is inline SVG, the top-k matches are HTML bars). Everything user-supplied is escaped (speaker names
through ``gallery.display_name``).
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
            + (f" <small>(words {f['speech_s']:.1f} s"
               + (f", scored in {f['parts']} parts" if f.get("parts", 1) > 1 else "") + ")</small>"
               if "speech_s" in f else "") + "</td>"
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
    return (f"<p class='explain long-pair'>Both clips hold at least {_long_seconds(long):g} s of speech, and the "
            "threshold was calibrated mostly on shorter pairs. Among held-out calibration pairs this long "
            f"({n_t:,} same-speaker"
            + (f" from {long['target_speakers']} people" if isinstance(long.get("target_speakers"), int) else "")
            + f", {n_n:,} "
            f"different-speaker), <b>{below_t:.0%}</b> of the same-speaker pairs scored lower than {score:.2f} and "
            f"<b>{above_n:.1%}</b> of the different-speaker pairs scored {score:.2f} or higher. This threshold "
            f"({threshold:.2f}) accepts <b>{fa:.0%}</b> of those different-speaker pairs and rejects {fr:.0%} of the "
            "same-speaker ones: raise it for a stricter decision on long recordings" + _stricter(tgt, non, threshold)
            + ".</p>")


def stricter_threshold(tgt, non, accept: float = 0.05) -> float | None:
    """The lowest two-decimal threshold that lets at most ``accept`` of these different-speaker scores pass
    (None without scores). Read on few dev pairs: a guide, not a calibration.

    >>> stricter_threshold([2.0, 3.0], [0.0, 1.0, 2.5])
    2.51
    """
    t_, n_ = np.asarray(tgt, dtype=np.float64), np.sort(np.asarray(non, dtype=np.float64))
    if not t_.size or not n_.size:
        return None
    return float(np.ceil(n_[max(0, int(np.ceil((1 - accept) * n_.size)) - 1)] * 100 + 1e-9) / 100)


def _stricter(tgt, non, threshold: float, others: str = "those different-speaker pairs",
              own: str = "the same-speaker ones") -> str:
    """Where a stricter threshold would stand, when it is above this one, and what it would cost."""
    t = stricter_threshold(tgt, non)
    if t is None or t <= threshold:
        return ""
    t_, n_ = np.asarray(tgt, dtype=np.float64), np.asarray(non, dtype=np.float64)
    return (f" (at {t:.2f}, {np.mean(n_ >= t):.0%} of {others} would pass and "
            f"{np.mean(t_ < t):.0%} of {own} would be rejected)")


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
            "stranger must not pass as someone enrolled"
            + _stricter(tgt, non, threshold, others="other people's clips", own="enrolled speakers' own clips")
            + ".</p>")


def empty_html(message: str) -> str:
    return f"<div class='empty-state'>{html.escape(message)}</div>"


def failed_html(what: str) -> str:
    """The line that replaces a refused request's old output; the error notice says why."""
    return f"<div class='status failed'>✘ {html.escape(what)}: the message above says why.</div>"


def _nice_ticks(lo: float, hi: float, n: int = 6) -> np.ndarray:
    """About ``n`` round tick values inside [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    raw = (hi - lo) / max(1, n)
    mag = 10.0 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    step = mag * min((m for m in (1, 2, 5, 10) if m * mag >= raw), default=10)
    return np.arange(np.ceil(lo / step) * step, hi + 1e-9, step)


THRESHOLD_SWATCH = "border-top:2px dashed currentColor;height:0"


def _key(style: str, text: str) -> str:
    """One legend entry of the HTML plots: a swatch drawn by ``style``, then its text."""
    return f'<span class="key"><span class="swatch" style="{style}"></span>{html.escape(text)}</span>'


def score_plot(score: float, threshold: float, cal: dict | None, scale: str = "cosine",
               min_speech: float | None = None) -> str:
    """The score on the checkpoint's same- and different-speaker score distributions (for a long pair, those of
    the long calibration pairs: see ``decision_html``), as an inline SVG in HTML.

    SVG rather than a matplotlib figure: the browser draws it, so a request does not spend ~200 ms rendering and
    encoding an image (the slider re-decides with it too), and it stays sharp at any width. Text and axes take the
    page's colour, so it reads in dark mode.
    """
    tgt, non, long = calibration_samples(cal or {}, min_speech)
    tgt, non = np.asarray(tgt, dtype=np.float64), np.asarray(non, dtype=np.float64)
    both = np.concatenate([tgt, non]) if tgt.size and non.size else np.zeros(0)
    lo = min([score, threshold] + ([float(np.percentile(both, 0.5))] if both.size else [-0.3]))
    hi = max([score, threshold] + ([float(np.percentile(both, 99.5))] if both.size else [1.0]))
    pad = max(0.03, 0.05 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    if scale == "cosine":
        lo, hi = max(-1.0, lo), min(1.0, hi)
    w, left, right, top, base = 420, 8, 412, 8, 128        # viewBox units; the plot spans left..right, top..base

    def x(v):
        return left + (float(v) - lo) / (hi - lo) * (right - left)

    parts = []
    if tgt.size and non.size:
        bins = np.linspace(lo, hi, 61)
        dens = [np.histogram(np.clip(s, lo, hi), bins=bins, density=True)[0] for s in (non, tgt)]
        peak = max(float(d.max()) for d in dens) or 1.0
        for d, colour in zip(dens, (RED, GREEN)):
            pts = [f"{x(bins[0]):.1f},{base}"]
            for i, h in enumerate(d):   # a step outline: one path per histogram
                y = base - h / peak * (base - top)
                pts += [f"{x(bins[i]):.1f},{y:.1f}", f"{x(bins[i + 1]):.1f},{y:.1f}"]
            pts.append(f"{x(bins[-1]):.1f},{base}")
            parts.append(f'<polygon points="{" ".join(pts)}" fill="{colour}" fill-opacity="0.5" '
                         f'stroke="{colour}" stroke-width="1"/>')
    else:
        parts.append(f'<text x="{w / 2}" y="{(top + base) / 2:.0f}" text-anchor="middle" fill="{GREY}">'
                     "this checkpoint carries no calibration scores</text>")
    parts.append(f'<line x1="{left}" x2="{right}" y1="{base}" y2="{base}" stroke="currentColor" '
                 'stroke-opacity="0.6"/>')
    for t in _nice_ticks(lo, hi):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{base}" y2="{base + 4}" stroke="currentColor" '
                     f'stroke-opacity="0.6"/><text x="{x(t):.1f}" y="{base + 19}" text-anchor="middle">'
                     f'{t + 0.0:g}</text>')   # (+ 0.0: no "-0")
    parts.append(f'<line class="threshold" x1="{x(threshold):.1f}" x2="{x(threshold):.1f}" y1="{top}" '
                 f'y2="{base}" stroke="currentColor" stroke-width="1.5" stroke-dasharray="5 3"/>')
    parts.append(f'<line class="this-pair" x1="{x(score):.1f}" x2="{x(score):.1f}" y1="{top}" y2="{base}" '
                 'stroke="#0969da" stroke-width="3"/>')
    parts.append(f'<text x="{w / 2}" y="{base + 38}" text-anchor="middle">'
                 f'{html.escape(SCALE_LABEL.get(scale, "score"))}</text>')
    title = ("This score against the model's calibration trials" if long is None else
             f"Against the calibration pairs with ≥ {_long_seconds(long):g} s of speech each")
    summary = (f"{title}: this pair scores {score:.2f}, the threshold is {threshold:.2f}"
               + (f"; {tgt.size} same-speaker and {non.size} different-speaker scores" if both.size else ""))

    keys = ([_key(f"background:{RED};opacity:.6", "different speakers"),
             _key(f"background:{GREEN};opacity:.6", "same speaker")] if both.size else [])
    keys += [_key(THRESHOLD_SWATCH, f"threshold {threshold:.2f}"),
             _key("background:#0969da;height:4px", f"this pair {score:.2f}")]
    return (f'<figure class="score-plot" role="img" aria-label="{html.escape(summary)}">'
            f'<figcaption>{html.escape(title)}</figcaption>'
            f'<svg viewBox="0 0 {w} {base + 44}" xmlns="http://www.w3.org/2000/svg" fill="currentColor" '
            f'font-size="15">{"".join(parts)}</svg><div class="keys">{"".join(keys)}</div></figure>')


def ranking_plot(ranking: list[dict], threshold: float, scale: str = "cosine") -> str:
    """The top-k matches as HTML bars, best on top, with the threshold as a dashed mark on every bar.

    HTML like ``score_plot``, for the same reasons; a long name is cut by CSS and kept whole in its tooltip.
    """
    if not ranking:
        return empty_html("The gallery is empty.")
    scores = [float(r["score"]) for r in ranking]
    if scale == "cosine":
        lo, hi = min(0.0, min(scores) - 0.05), 1.12
    else:
        top = max(max(scores), threshold)
        lo, hi = min(0.0, min(scores) - 0.3), top + 0.15 * max(1.0, top - min(0.0, min(scores)))

    def pct(v: float) -> float:
        return 100.0 * (min(max(v, lo), hi) - lo) / (hi - lo)

    rows = []
    for i, (r, s) in enumerate(zip(ranking, scores)):
        colour = GREEN if (i == 0 and s >= threshold) else ("#8c959f" if s < threshold else "#4ac26b")
        a, b = sorted((pct(0.0), pct(s)))
        name = display_name(str(r["speaker"]))
        rows.append(f'<div class="rank-row"><span class="rank-name" title="{name}">{name}</span>'
                    f'<span class="rank-track"><span class="rank-bar" style="left:{a:.1f}%;width:{b - a:.1f}%;'
                    f'background:{colour}"></span><span class="rank-thr" style="left:{pct(threshold):.1f}%">'
                    f'</span></span><span class="rank-score">{s:.2f}</span></div>')
    summary = "; ".join(f"{r['speaker']} {s:.2f}" for r, s in zip(ranking, scores))
    n = len(ranking)
    return (f'<figure class="ranking" role="img" aria-label="{html.escape(summary)}; threshold {threshold:.2f}">'
            f"<figcaption>Top {n} match{'es' if n != 1 else ''}</figcaption>{''.join(rows)}"
            f'<div class="keys">{_key(THRESHOLD_SWATCH, f"threshold {threshold:.2f}")}'
            f'<span class="key">{html.escape(SCALE_LABEL.get(scale, "score"))} with the voiceprint</span></div>'
            "</figure>")


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


def _identify_row(cal: dict) -> str:
    """The model-card row for Identify: how the calibrated threshold fares on the stored clip-against-voiceprint
    trials ("" without them). Read from the checkpoint, so it never goes stale when the file changes.

    >>> _identify_row({"threshold": 1.0, "voiceprints": {"clips_per_print": 3, "speakers": 2,
    ...     "target_scores": [0.5, 2.0, 3.0, 4.0], "nontarget_scores": [-1.0, 0.0, 1.5, -2.0]}})
    "| Identify at the threshold | against 3-clip voiceprints of 2 held-out speakers: 75.0 % of 4 clips pass against their own speaker's voiceprint, and 25.0 % of 4 other people's (same corpus) pass |"
    """
    samples = voiceprint_samples(cal)
    if samples is None or cal.get("threshold") is None:
        return ""
    tgt, non, vp = samples
    try:
        thr = float(cal["threshold"])
    except (TypeError, ValueError):
        return ""
    *_, passing, rejected, n_t, n_n = _reading(vp, tgt, non, thr, thr)
    n_clips, n_spk = vp.get("clips_per_print"), vp.get("speakers")
    whose = (f"{n_clips}-clip " if isinstance(n_clips, int) else "") + "voiceprints" + \
        (f" of {n_spk} held-out speakers" if isinstance(n_spk, int) else " of held-out speakers")
    return (f"| Identify at the threshold | against {whose}: {100 * (1 - rejected):.1f} % of {n_t:,} clips pass "
            f"against their own speaker's voiceprint, and {100 * passing:.1f} % of {n_n:,} other people's (same "
            "corpus) pass |")


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
    if getattr(model, "parts", None):
        share = ", each with an equal share of its words" if getattr(model, "part_cut", "time") == "words" else ""
        lines.append(f"| long clips | a clip with {2 * model.parts:g} s of words or more is scored in parts of about "
                     f"{model.parts:g} s{share}: a pair's score is the mean over the pairs of parts |")
    if cal.get("eer") is not None:
        lines.append(f"| pooled dev EER | {_pct(100 * float(cal['eer']))} |")
    identify = _identify_row(cal)
    if identify:
        lines.append(identify)
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
                      "pair: how the one threshold, calibrated mostly on 1-3 s pairs, fares at each length)", "",
                  "| speech in the shorter clip | false accepts | different-speaker pairs | false rejects | "
                  "same-speaker pairs |", "|---|---|---|---|---|"]
        count = lambda v: f"{v:,}" if isinstance(v, int) else _fmt(v if v is not None else "")
        for r in by:
            if isinstance(r, dict):
                lines.append(f"| {html.escape(str(r.get('seconds', '')))} s | {pct(r.get('false_accept_pct'))} | "
                             f"{count(r.get('n_nontarget'))} | {pct(r.get('false_reject_pct'))} | "
                             f"{count(r.get('n_target'))} |")
    return "\n".join(lines)
