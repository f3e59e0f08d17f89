"""What the app shows (speaker_core.views): HTML fragments, plots and the model card, from plain values."""
import re

from speaker_core import api, views
from test_app_logic import _save, _untrained


def test_decision_html_escapes_labels_and_explains_from_calibration():
    cal = {"target_scores": [0.2, 0.6, 0.8, 0.9], "nontarget_scores": [-0.1, 0.0, 0.1, 0.5]}
    out = views.decision_html(0.55, 0.4, True, cal, labels=("<script>x</script>", "no"))
    assert "<script>" not in out and "&lt;script&gt;" in out
    # 1 of 4 same-speaker pairs scored lower than 0.55; 0 of 4 different-speaker pairs at or above it
    assert "<b>25%</b> of same-speaker pairs" in out and "<b>0.0%</b> of different-speaker pairs" in out
    assert "margin +0.150" in out
    assert "calibration trials" not in views.decision_html(0.1, 0.4, False, None)


def test_a_long_pair_is_read_against_the_long_calibration_pairs():
    """The threshold is calibrated mostly on short pairs: a pair whose clips both hold >= 3 s of speech is explained
    with the long calibration pairs' scores, and told what the threshold does to them."""
    cal = {"target_scores": [0.0, 1.0, 2.0, 3.0], "nontarget_scores": [-1.0, 0.0, 0.5, 1.0],
           "long_pairs": {"min_speech_s": 3.0, "n_target": 4, "n_nontarget": 5,
                          "target_scores": [2.0, 3.0, 4.0, 5.0], "nontarget_scores": [0.0, 1.0, 2.0, 2.5, 3.0]}}
    short = views.decision_html(2.2, 1.5, True, cal, min_speech=2.9)
    assert "<b>75%</b> of same-speaker pairs" in short and "<b>0.0%</b> of different-speaker pairs" in short
    assert "long-pair" not in short
    long = views.decision_html(2.2, 1.5, True, cal, min_speech=3.0)
    assert "at least 3 s of speech" in long and "(4 same-speaker, 5 different-speaker)" in long
    # how many people the long same-speaker pairs come from, when the checkpoint says
    few = {**cal, "long_pairs": {**cal["long_pairs"], "target_speakers": 2}}
    assert "(4 same-speaker from 2 people, 5 different-speaker)" in views.decision_html(2.2, 1.5, True, few,
                                                                                       min_speech=3.0)
    # 1 of 4 long same-speaker pairs below 2.2; 2 of 5 long different-speaker pairs at or above it;
    # at threshold 1.5: 3 of 5 accepted, none rejected
    assert "<b>25%</b> of the same-speaker" in long and "<b>40.0%</b> of the different-speaker" in long
    assert "(1.50) accepts <b>60%</b> of those different-speaker pairs and rejects 0%" in long
    # where a stricter threshold would stand on those pairs (above all but 5 % of their different-speaker scores)
    assert ("(at 3.01, 0% of those different-speaker pairs would pass and 50% of the same-speaker ones would be "
            "rejected)") in long
    assert "(at " not in views.decision_html(3.5, 3.2, True, cal, min_speech=3.0)   # already that strict
    assert "≥ 3 s of speech" in _caption(views.score_plot(2.2, 1.5, cal, min_speech=6.0))
    assert "≥" not in _caption(views.score_plot(2.2, 1.5, cal, min_speech=1.0))
    # a malformed entry or length falls back to the pooled trials instead of failing the request
    for bad_long, bad_len in ((dict(cal["long_pairs"], min_speech_s="x"), 6.0), ({"target_scores": "ab"}, 6.0),
                              (dict(cal["long_pairs"], nontarget_scores=[1.0, None]), 6.0),
                              (cal["long_pairs"], "six"), ("junk", 6.0)):
        out = views.decision_html(2.2, 1.5, True, {**cal, "long_pairs": bad_long}, min_speech=bad_len)
        assert "long-pair" not in out and "<b>75%</b> of same-speaker pairs" in out
    # counts and the length are optional: the samples' sizes and 3 s stand in
    bare = {**cal, "long_pairs": {"target_scores": [2.0, 3.0], "nontarget_scores": [0.0, 2.5], "n_target": "4"}}
    assert "at least 3 s of speech" in views.decision_html(2.2, 1.5, True, bare, min_speech=3.5)
    assert "(2 same-speaker, 2 different-speaker)" in views.decision_html(2.2, 1.5, True, bare, min_speech=3.5)
    # checkpoints calibrated before long pairs were kept: the pooled trials, as before
    old = {k: v for k, v in cal.items() if k != "long_pairs"}
    assert views.decision_html(2.2, 1.5, True, old, min_speech=8.0) == views.decision_html(2.2, 1.5, True, old)


def _caption(plot: str) -> str:
    return re.search(r"<figcaption>(.*?)</figcaption>", plot)[1]


def _line_x(plot: str, cls: str) -> float:
    return float(re.search(rf'<line class="{cls}" x1="([-0-9.]+)"', plot)[1])


def test_score_plot_without_calibration_says_so_and_keeps_the_score_in_view():
    plot = views.score_plot(0.93, 0.3, None)
    assert "no calibration scores" in plot and "same speaker" not in plot
    # the plot spans x = 8..412 of a 420-wide view box; cosine ticks stay within [-1, 1], and none reads "-0"
    assert 8 < _line_x(plot, "threshold") < _line_x(plot, "this-pair") < 412
    ticks = [float(t) for t in re.findall(r'text-anchor="middle">([-0-9.e]+)</text>', plot)]
    assert ticks and all(-1 <= t <= 1 for t in ticks) and ">-0<" not in plot
    assert 'aria-label="This score against the model&#x27;s calibration trials: this pair scores 0.93, ' in plot


def test_score_plot_draws_both_distributions_with_the_pair_and_threshold_where_they_score():
    cal = {"target_scores": [2.0, 3.0, 4.0, 5.0], "nontarget_scores": [-2.0, -1.0, 0.0, 1.0]}
    plot = views.score_plot(-1.5, 1.5, cal, scale="as-norm")
    assert plot.count("<polygon") == 2 and "AS-norm score" in plot
    assert "different speakers" in plot and "this pair -1.50" in plot and "threshold 1.50" in plot
    # positions follow the scale: the low score sits left of the threshold
    assert _line_x(plot, "this-pair") < _line_x(plot, "threshold")
    assert "4 same-speaker and 4 different-speaker scores" in plot


def test_ranking_plot_escapes_and_keeps_long_names_and_handles_an_empty_gallery():
    assert "empty" in views.ranking_plot([], 0.3)
    rank = [{"speaker": "<b>x</b>" * 10, "score": 0.8}, {"speaker": "Bo", "score": 0.1}]
    out = views.ranking_plot(rank, 0.3)
    names = re.findall(r'<span class="rank-name" title="([^"]*)">([^<]*)</span>', out)
    assert names == [("&lt;b&gt;x&lt;/b&gt;" * 10,) * 2, ("Bo", "Bo")]   # the best match on top, whole, escaped
    assert "<b>x" not in out and "Top 2 matches" in out
    # the first bar is the accepted match (green); a score under the threshold is grey
    bars = re.findall(r'class="rank-bar" style="left:([0-9.]+)%;width:([0-9.]+)%;background:(#\w+)"', out)
    assert bars[0][2] == views.GREEN and bars[1][2] == "#8c959f" and float(bars[0][1]) > float(bars[1][1])
    thr = re.findall(r'class="rank-thr" style="left:([0-9.]+)%"', out)
    assert len(set(thr)) == 1 and float(bars[1][1]) < float(thr[0]) < float(bars[0][1])


def test_model_card_threshold_line_per_scale(tmp_path):
    """A cosine-calibrated checkpoint shows its calibrated threshold and no 'default threshold' line."""
    _save(tmp_path / "cos.pt", {"calibration": {"threshold": 0.123, "eer": 0.1}})
    card = views.model_card_markdown(api.load_model(tmp_path / "cos.pt"), "cos@x")
    assert "| calibrated threshold | 0.123 (cosine score" in card
    assert "no calibration" not in card and "score normalisation" not in card


def test_model_card_epochs_label_for_warm_restarts(tmp_path):
    """trained_epochs counts only the last stage of a warm-started checkpoint, and the card says so."""
    net = _untrained()
    _save(tmp_path / "warm.pt", {"trained_epochs": 66, "recipe": {"init": "a.pt"}}, net)
    _save(tmp_path / "cold.pt", {"trained_epochs": 17, "recipe": {"init": None}}, net)
    warm = views.model_card_markdown(api.load_model(tmp_path / "warm.pt"), "w@x")
    cold = views.model_card_markdown(api.load_model(tmp_path / "cold.pt"), "c@x")
    assert "| trained epochs (last warm-restart stage) | 66 |" in warm
    assert "| trained epochs | 17 |" in cold
    # a weight average: the stored epochs are one ingredient's, so the card lists the ingredients instead
    _save(tmp_path / "soup.pt", {"trained_epochs": 66, "averaged_from": ["s3/a.pt", "<b>/x.pt"], "source": "export.pt"},
          net)
    soup = views.model_card_markdown(api.load_model(tmp_path / "soup.pt"), "s@x")
    assert "uniform weight average of 2 checkpoints: s3/a.pt, &lt;b&gt;/x.pt |" in soup
    assert "trained epochs" not in soup and "| file |" not in soup


def test_model_card_shows_dev_eer_intervals_and_survives_malformed_ones(tmp_path):
    net = _untrained()
    dev = {"per_corpus": {"a": 10.0, "<b>": 20.0}, "pooled": 15.0, "mean_over_corpora": 15.0}
    metas = {"ci": {"dev_eer": {**dev, "ci95": {"a": [8.0, 12.5], "pooled": [11.0, 19.0], "method": "boot"}}},
             "bad": {"dev_eer": {**dev, "ci95": {"a": "x", "<b>": [1], "pooled": [None, 2]}}},
             "none": {"dev_eer": dev}}
    cards = {}
    for name, meta in metas.items():
        _save(tmp_path / f"{name}.pt", meta, net)
        cards[name] = views.model_card_markdown(api.load_model(tmp_path / f"{name}.pt"), f"{name}@x")
    assert "| a | 10.00 % | 8.0–12.5 % |" in cards["ci"] and "| pooled | 15.00 % | 11.0–19.0 % |" in cards["ci"]
    assert "| &lt;b&gt; | 20.00 % |  |" in cards["ci"] and "resamples speakers (boot)" in cards["ci"]
    assert "| a | 10.00 % |  |" in cards["bad"] and "| pooled | 15.00 % |  |" in cards["bad"]
    assert "| a | 10.00 % |" in cards["none"] and "95 % interval" not in cards["none"]


def test_model_card_says_how_silence_is_handled(tmp_path):
    _save(tmp_path / "plain.pt")
    _save(tmp_path / "edges.pt", {"edges": {"keep": 0.2, "pad": 1.5, "db": -50.0}})
    assert "silence around the words" not in views.model_card_markdown(api.load_model(tmp_path / "plain.pt"), "p@x")
    card = views.model_card_markdown(api.load_model(tmp_path / "edges.pt"), "e@x")
    assert "| silence around the words | each edge cut to 0.2 s, then the same 1.5 s of -50 dBFS noise" in card
    _save(tmp_path / "words.pt", {"edges": {"keep": 0.2, "pad": 1.5, "db": -50.0, "detector": "words"}})
    card = views.model_card_markdown(api.load_model(tmp_path / "words.pt"), "w@x")
    assert "each edge cut to 0.2 s (edges found by the word detector), then the same 1.5 s" in card


def test_model_card_says_when_long_clips_are_scored_in_parts(tmp_path):
    _save(tmp_path / "plain.pt")
    _save(tmp_path / "parts.pt", {"scoring": {"parts": 2.0}})
    assert "| long clips |" not in views.model_card_markdown(api.load_model(tmp_path / "plain.pt"), "p@x")
    card = views.model_card_markdown(api.load_model(tmp_path / "parts.pt"), "s@x")
    assert "| long clips | a clip with 4 s of words or more is scored in parts of about 2 s:" in card
    _save(tmp_path / "words.pt", {"scoring": {"parts": 2.0, "cut": "words"}})
    card = views.model_card_markdown(api.load_model(tmp_path / "words.pt"), "w@x")
    assert "scored in parts of about 2 s, each with an equal share of its words,: a pair's" not in card
    assert "scored in parts of about 2 s, each with an equal share of its words: a pair's" in card


def test_model_card_shows_the_threshold_errors_by_length_of_speech(tmp_path):
    by = [{"seconds": "0-1.5", "n_target": 10, "n_nontarget": 23608, "false_reject_pct": 12.5, "false_accept_pct": 10.0},
          {"seconds": ">=6", "n_target": 0, "n_nontarget": 7, "false_reject_pct": None, "false_accept_pct": 42.86},
          "junk"]
    _save(tmp_path / "by.pt", {"calibration": {"threshold": 0.3}, "dev_eer": {"pooled": 11.0, "at_threshold_by_speech": by}})
    card = views.model_card_markdown(api.load_model(tmp_path / "by.pt"), "b@x")
    assert "| 0-1.5 s | 10.0 % | 23,608 | 12.5 % | 10 |" in card
    assert "| &gt;=6 s | 42.9 % | 7 | – | 0 |" in card
    _save(tmp_path / "no.pt", {"calibration": {"threshold": 0.3}, "dev_eer": {"pooled": 11.0}})
    assert "by length of speech" not in views.model_card_markdown(api.load_model(tmp_path / "no.pt"), "n@x")


def test_facts_show_how_long_the_words_last():
    fact = {"clip": "A: <i>x</i>.wav", "duration_s": 4.0, "original_duration_s": 4.0, "truncated": False,
            "sample_rate": 16000, "speech_fraction": 0.39, "warnings": []}
    assert "(words 1.4 s)" in views.facts_html([{**fact, "speech_s": 1.43}])
    assert "words" not in views.facts_html([fact])   # a result from before the field existed
    assert "<i>" not in views.facts_html([fact])


def test_an_identify_score_is_read_against_voiceprint_trials():
    cal = {"voiceprints": {"clips_per_print": 3, "target_scores": [1.0, 2.0, 3.0, 4.0],
                           "nontarget_scores": [-1.0, 0.0, 1.0, 2.5, 3.0]}}
    out = views.voiceprint_html(cal, 2.2, 1.5)
    # 2 of 4 own clips below 2.2; 2 of 5 other clips at or above it; 2 of 5 pass threshold 1.5
    assert "Against 3-clip voiceprints" in out and "<b>50%</b> of their own clips" in out
    assert "<b>40.0%</b> of other people's clips scored 2.20 or higher (4 and 5 comparisons)" in out
    assert "lets <b>40%</b> of other people's clips pass" in out
    # a stricter threshold above all but 5 % of the other clips: 3.01; it rejects 3 of the 4 own clips
    assert "(at 3.01, 0% of other people's clips would pass and 75% of enrolled speakers' own clips" in out
    sampled = {"voiceprints": {**cal["voiceprints"], "n_target": 337, "n_nontarget": 3268}}
    assert "(337 and 3,268 comparisons)" in views.voiceprint_html(sampled, 2.2, 1.5)
    for bad in (None, {}, {"voiceprints": "x"}, {"voiceprints": {"target_scores": [1.0]}},
                {"voiceprints": {"target_scores": ["a"], "nontarget_scores": [1.0]}}):
        assert views.voiceprint_html(bad, 2.2, 1.5) == ""


def test_model_card_says_how_identify_fares_at_the_threshold(tmp_path):
    """The Identify row is read from the checkpoint's own voiceprint trials (so it changes with the file), and is left
    out when they are missing or malformed."""
    vp = {"clips_per_print": 3, "speakers": 4, "n_target": 5, "n_nontarget": 4,
          "target_scores": [0.1, 0.2, 0.5, 0.6, 0.9], "nontarget_scores": [-0.2, 0.0, 0.1, 0.45]}
    _save(tmp_path / "vp.pt", {"calibration": {"threshold": 0.4, "eer": 0.1, "voiceprints": vp}})
    card = views.model_card_markdown(api.load_model(tmp_path / "vp.pt"), "vp@x")
    assert ("| Identify at the threshold | against 3-clip voiceprints of 4 held-out speakers: 60.0 % of 5 clips pass "
            "against their own speaker's voiceprint, and 25.0 % of 4 other people's (same corpus) pass |") in card
    bad = {**vp, "nontarget_scores": "<b>x</b>"}
    _save(tmp_path / "bad.pt", {"calibration": {"threshold": 0.4, "eer": 0.1, "voiceprints": bad}})
    assert "Identify at the threshold" not in views.model_card_markdown(api.load_model(tmp_path / "bad.pt"), "b@x")
