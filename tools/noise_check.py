"""Rule 50: how much does noise in one clip cost the default, and does ``audio.snr_db`` tell noisy clips?

    python tools/noise_check.py [--checkpoint checkpoints/ecapa-speakernet-fusion.pt]

1. Scores every dev trial (``evaluate``'s list) with its second clip at a true speech-to-noise ratio of 20, 15, 10,
   5 and 0 dB (white noise on even items, babble of training speech on odd ones) and prints the pooled false
   rejects and accepts at the calibrated threshold. T_true = the highest level where the misses double.
2. T = the median ``snr_db`` of 400 training clips with noise at T_true.
3. The bars of tools/rules/rule50.txt: clean dev clips under T, dev clips at T_true - 5 dB under T, bundled speech
   under T.

With ``--pairs T``: rule 51's pair warning instead (tools/rules/rule51.txt), with rule 50's T: how often it fires on
dev trials, clean and with the second clip noisy, and on the app's example pairs. Embeds nothing.

With ``--channel``: rule 57's check (tools/rules/rule57.txt) instead: the second clip of every trial through each of
``CHANNELS``, fixed microphone/line colourings made with torchaudio's causal biquads, none of them a draw of the
training chain's ``augment.random_eq`` (zero-phase peaking bands); "phone" is the training chain's telephone band
(in every recipe since session 1), reported alone. Prints the pooled EER per channel and the held-out mean.
``--both`` puts the first clip through the same channel too (information only): what matching the other clip's
band would recover.
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from speaker_core.api import edges_of, load_model, window_of  # noqa: E402
from speaker_core.audio import MAX_SECONDS, AudioError, frame_db, load_clip, word_frames  # noqa: E402
from speaker_core.augment import babble_noise, colored_noise  # noqa: E402
from speaker_core.data import load_wave, read_manifest  # noqa: E402
from speaker_core.evaluate import (embed_parts, embed_waves, evaluate_embeddings, items_from_manifest,  # noqa: E402
                                   items_with_trials)
from speaker_core.scoring import part_cut_of, parts_of, score_norm_of  # noqa: E402

LEVELS = (20, 15, 10, 5, 0)


def _channel(name: str, x: torch.Tensor) -> torch.Tensor:
    import torchaudio.functional as AF
    from speaker_core.augment import telephone
    sr = 16000
    if name == "muffled":      # cloth over the microphone, a cheap headset: 24 dB/octave above 2 kHz
        return AF.lowpass_biquad(AF.lowpass_biquad(x, sr, 2000.0), sr, 2000.0)
    if name == "thin":         # a small speaker or mic with no bass: 24 dB/octave below 600 Hz
        return AF.highpass_biquad(AF.highpass_biquad(x, sr, 600.0), sr, 600.0)
    if name == "tilted":       # a laptop microphone: bass shelved down 12 dB, presence up 8 dB
        return AF.treble_biquad(AF.bass_biquad(x, sr, -12.0, 300.0), sr, 8.0, 4000.0)
    if name == "phone":
        return telephone(x, "bandpass")
    raise ValueError(name)


CHANNELS = ("muffled", "thin", "tilted", "phone")
HELD_OUT = ("muffled", "thin", "tilted")


def through(waves, name: str) -> list[np.ndarray]:
    """Each wave through channel ``name``, at its own RMS again (the colouring alone, not a level change)."""
    out = []
    for w in waves:
        x = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        y = _channel(name, x)
        y = y * (x.pow(2).mean().sqrt() / y.pow(2).mean().clamp_min(1e-20).sqrt())
        out.append(y.clamp(-1.0, 1.0).numpy().astype(np.float32))
    return out


def snr_db(wave: np.ndarray) -> float:
    """Estimated speech-to-noise ratio of 16 kHz audio in dB (rules 50 and 51; as a warning it failed both, so it
    lives in this tool): the mean power of the loudest 10 % of 25 ms frames (the voiced peaks of the words) over
    that of the quietest 10 % (the background between and around them), less
    the background's own share of the loud frames. It needs no word detector, which noise defeats. It reads about
    1 dB high on steady noise, whose quietest frames sit under its mean, and more on real speech, whose loudest
    frames stand out from its mean. Capped at 99 dB (digital silence around the words).

    >>> r = np.random.RandomState(0)
    >>> t = np.arange(16000 * 2) / 16000
    >>> words = (0.1 * np.sin(2 * np.pi * 700 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)
    >>> noise = r.standard_normal(words.size).astype(np.float32) * 0.1 / np.sqrt(2)   # as loud as the words
    >>> [round(snr_db(words + noise * 10 ** (-s / 20))) for s in (20, 10, 5, 0)], snr_db(words)
    ([21, 11, 6, 1], 99.0)
    """
    p = np.sort(10.0 ** (frame_db(wave).astype(np.float64) / 10.0))
    k = max(1, p.size // 10)
    ratio = p[-k:].mean() / max(p[:k].mean(), 1e-20) - 1.0
    return float(min(99.0, 10.0 * np.log10(max(ratio, 1e-3))))


def word_power(wave: np.ndarray) -> float:
    """Mean power of the clip's word frames (all frames when none is found)."""
    db = frame_db(wave).astype(np.float64)
    words = word_frames(wave)
    return float(np.mean(10.0 ** (db[words if words.any() else slice(None)] / 10.0)))


def music_noise(n: int, rng: np.random.RandomState) -> np.ndarray:
    """A random stretch of Gradio's two sample music files (saxophone, a band), unit RMS: a noise that no training
    recipe here generates."""
    x = _music()[rng.randint(2)]
    x = np.tile(x, -(-n // x.size) + 1)
    s = rng.randint(0, x.size - n + 1)
    y = x[s:s + n].astype(np.float64)
    return (y / max(np.sqrt(np.mean(y ** 2)), 1e-9)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _music():
    import gradio
    folder = Path(gradio.__file__).parent / "media_assets" / "audio"
    return [load_clip(folder / f).wave for f in ("sax.wav", "cantina.wav")]


def noisy(waves, level: float, sources, seed: int = 0, music: bool = False) -> list[np.ndarray]:
    """Each wave plus noise at ``level`` dB below its word power: white on even indices, babble on odd ones, or
    with ``music`` the sample music on all."""
    out = []
    for i, w in enumerate(waves):
        rng = np.random.RandomState(seed * 100003 + i)
        if music:
            n = music_noise(len(w), rng)
        else:
            n = (colored_noise(len(w), rng, 0.0) if i % 2 == 0 else babble_noise(len(w), rng, sources)).numpy()
        out.append((w + n * np.sqrt(word_power(w) / 10.0 ** (level / 10.0))).astype(np.float32))
    return out


def babble_pool(train_manifest: str):
    """The training rows, their seed-0 order, and babble sources drawn from the first 300 files of that order."""
    rows = read_manifest(train_manifest)
    pick = np.random.RandomState(0).permutation(len(rows))
    pool = [load_wave(rows[i]["audio_filepath"]) for i in pick[:300]]
    return rows, pick, lambda rng: pool[rng.randint(len(pool))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "ecapa-speakernet-fusion.pt"))
    ap.add_argument("--train", default=str(ROOT / "data" / "train.jsonl"))
    ap.add_argument("--dev", default=str(ROOT / "data" / "dev.jsonl"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=float, default=None, metavar="T", help="rule 51 with this T (rule 50's)")
    ap.add_argument("--music", action="store_true", help="information only: Gradio's sample music as the noise, "
                    "at 20 and 10 dB, instead of the rule's white noise and babble; no T, no bars")
    ap.add_argument("--channel", action="store_true", help="rule 57: the second clip through fixed channel "
                    "colourings instead of noise; no T")
    ap.add_argument("--both", action="store_true", help="with --channel: both clips through the channel (a "
                    "matched pair, as if the other clip had been band-limited to match), information only")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.pairs is not None:
        return pair_rule(a, a.pairs)
    t0 = time.time()
    rec = load_model(a.checkpoint)
    model = rec if hasattr(rec, "members") else rec.net
    kw = dict(window=None if hasattr(rec, "members") else window_of(rec.meta),
              edges=None if hasattr(rec, "members") else edges_of(rec.meta))
    norm, parts, cut_by = score_norm_of(rec.meta, rec.emb_dim), parts_of(rec.meta), part_cut_of(rec.meta)
    thr = float(rec.threshold)

    train_rows, pick, sources = babble_pool(a.train)

    items, waves, trials = items_with_trials(items_from_manifest(a.dev))
    print(f"dev: {len(items)} items, {sum(len(t) for t in trials.values())} trials; threshold {thr:.3f}", flush=True)

    def embed(ws):
        e = embed_waves(model, ws, **kw)
        return e, (embed_parts(model, ws, parts, emb=e, cut_by=cut_by, **kw) if parts else None)

    emb, pa = embed(waves)
    rows = {}
    conditions = CHANNELS if a.channel else (20, 10) if a.music else LEVELS
    for level in (None,) + conditions:
        wb = waves if level is None else through(waves, level) if a.channel else noisy(waves, level, sources,
                                                                                        music=a.music)
        eb, pb = (emb, pa) if level is None else embed(wb)
        ea, paa = (eb, pb) if a.both else (emb, pa)
        res, scores = evaluate_embeddings(ea, trials, norm=norm, emb_b=eb, parts=paa, parts_b=pb)
        pt, pn = scores["pooled"]
        rows[level] = (100 * np.mean(pt < thr), 100 * np.mean(pn >= thr), res["pooled"]["eer"],
                       res["mean_set_eer"], np.median([snr_db(w) for w in wb]))
        fr, fa, eer, mean, med = rows[level]
        what = ('clean' if level is None else f'{level:>7s}' if a.channel else f'at {level:2d} dB'
                + (' (music)' if a.music else ''))
        print(f"{'both clips' if a.both and level else 'second clip'} {what}: FR {fr:5.2f} %  FA {fa:5.2f} %  "
              f"pooled EER {eer:5.2f}  mean EER {mean:5.2f}  median snr_db {med:5.1f}  ({time.time() - t0:.0f} s)",
              flush=True)
    if a.channel:
        held = [rows[c][2] for c in HELD_OUT]
        print(f"held-out channels ({', '.join(HELD_OUT)}): mean pooled EER {np.mean(held):.2f} "
              f"(clean {rows[None][2]:.2f})")
    if a.music or a.channel:
        return
    fr0 = rows[None][0]
    doubled = [lv for lv in LEVELS if rows[lv][0] >= 2 * fr0]
    if not doubled:
        print(f"no level doubles the misses ({fr0:.2f} %): rule 50 fails, no warning")
        return
    t_true = max(doubled)
    train_waves = [load_wave(train_rows[i]["audio_filepath"]) for i in pick[300:700]]
    t = float(np.median([snr_db(w) for w in noisy(train_waves, t_true, sources, seed=1)]))
    print(f"T_true = {t_true} dB (FR {rows[t_true][0]:.2f} % against {fr0:.2f} % clean); "
          f"T = {t:.2f} dB (median snr_db of 400 training clips at {t_true} dB)")

    def app_snr(path):
        """NaN for a clip the app refuses before any warning (silent, under 0.25 s)."""
        try:
            return snr_db(load_clip(path, max_seconds=MAX_SECONDS).wave)
        except AudioError:
            return float("nan")

    files = sorted({it["path"] for it in items})
    clean = np.array([app_snr(p) for p in files])
    print(f"   ({int(np.isnan(clean).sum())} dev files refused by the app as they are, left out)")
    files, clean = [p for p, s in zip(files, clean) if not np.isnan(s)], clean[~np.isnan(clean)]
    low = clean < t
    print(f"1. clean dev files under T: {int(low.sum())} / {clean.size} = {100 * low.mean():.2f} % (bar <= 2 %); "
          f"percentiles 1/5/50: {' / '.join(f'{x:.1f}' for x in np.percentile(clean, [1, 5, 50]))} dB")
    for p, s in zip(files, clean):
        if s < t:
            print(f"     {p.split('speech/')[-1]}  {s:.1f} dB")
    at = np.array([snr_db(w) for w in noisy(waves, t_true - 5, sources)])
    print(f"2. dev items at {t_true - 5} dB under T: {100 * np.mean(at < t):.2f} % (bar >= 90 %); "
          f"white {100 * np.mean(at[0::2] < t):.1f} %, babble {100 * np.mean(at[1::2] < t):.1f} %")
    assets = sorted((ROOT / "assets" / "examples").glob("*.wav")) + sorted((ROOT / "assets" / "reference").glob("*.flac"))
    got = {p.name: app_snr(p) for p in assets}
    warned = [f"{n} {s:.1f}" for n, s in got.items() if s < t]
    print(f"3. bundled speech under T: {len(warned)} / {len(got)} (bar: none); lowest {min(got.values()):.1f} dB "
          f"{warned}")


def mismatched(snr_a: float, snr_b: float, t: float, gap: float = 10.0) -> bool:
    """Rule 51: the noisier clip under ``t`` and at least ``gap`` dB noisier than the other."""
    lo, hi = sorted((snr_a, snr_b))
    return bool(lo < t and hi - lo >= gap)


def pair_rule(a, t: float) -> None:
    _, _, sources = babble_pool(a.train)
    items, waves, trials = items_with_trials(items_from_manifest(a.dev))
    tr = np.concatenate([np.asarray(v, dtype=np.int64) for v in trials.values()])
    clean = np.array([snr_db(w) for w in waves])

    def rate(snr_b, rows=slice(None)):
        x = tr[rows]
        return 100 * np.mean([mismatched(clean[i], snr_b[j], t) for i, j, _ in x])

    print(f"{len(tr)} dev trials; T = {t:.2f} dB, gap 10 dB")
    print(f"1. clean trials warned: {rate(clean):.2f} % (bar <= 2 %); target {rate(clean, tr[:, 2] == 1):.2f} %, "
          f"non-target {rate(clean, tr[:, 2] == 0):.2f} %")
    for level, bar in ((20, 50), (15, None), (10, 80), (5, None), (0, None)):
        snr_b = np.array([snr_db(w) for w in noisy(waves, level, sources)])
        odd = tr[:, 1] % 2 == 1
        print(f"2. second clip at {level:2d} dB warned: {rate(snr_b):.2f} %" + (f" (bar >= {bar} %)" if bar else "")
              + f"; white noise {rate(snr_b, ~odd):.1f} %, babble {rate(snr_b, odd):.1f} %", flush=True)
    from speaker_core.app_logic import example_paths
    rows, labels = example_paths()
    for (pa, pb), label in zip(rows, labels):
        sa, sb = (snr_db(load_clip(p, max_seconds=MAX_SECONDS).wave) for p in (pa, pb))
        print(f"3. {label}: {sa:.1f} / {sb:.1f} dB {'WARNED' if mismatched(sa, sb, t) else 'not warned'}")


if __name__ == "__main__":
    main()
