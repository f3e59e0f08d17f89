"""Rebuild the bundled example and reference clips from the shared speech pool.

    python assets/make_assets.py [--data ../shared/data/speech]

Every clip is cut from one source file (offset and length below), downmixed to mono,
resampled to 16 kHz, peak-limited to -1 dBFS and written as 16-bit PCM: WAV for the
Verify examples (browser playback), FLAC for the voice-map reference set. All speakers
are in the speaker-disjoint dev split (speaker_core.data.split_speakers, 10 %, seed 0),
so the shipped checkpoints never trained on them. ATTRIBUTION.md lists each clip.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16000
HERE = Path(__file__).resolve().parent

# (output name, source file relative to the pool, start s, length s)
EXAMPLES = [
    ("so0049_a.wav", "speechocean762/SPEAKER0049/000490047.flac", 0.0, 4.0),
    ("so0049_b.wav", "speechocean762/SPEAKER0049/000490092.flac", 0.0, 4.0),
    ("fa08bd_a.wav", "common-voice-fa/08bdec9b79c0759a/common_voice_fa_37156577.mp3", 0.0, 4.0),
    ("fa08bd_b.wav", "common-voice-fa/08bdec9b79c0759a/common_voice_fa_37156578.mp3", 0.0, 4.0),
    ("so0981_a.wav", "speechocean762/SPEAKER0981/009810106.flac", 0.0, 4.0),
    ("so2242_a.wav", "speechocean762/SPEAKER2242/022420073.flac", 0.0, 4.0),
    ("ls405_a.wav", "librispeech-train-clean-100/405/405-130894-0000.flac", 1.0, 4.0),
    ("ls3240_a.wav", "librispeech-train-clean-100/3240/3240-131231-0000.flac", 1.0, 4.0),
]

REFERENCE_SPEAKERS = [
    "librispeech-train-clean-100/1578",
    "librispeech-train-clean-100/40",
    "librispeech-train-clean-100/8770",
    "speechocean762/SPEAKER9624",
    "speechocean762/SPEAKER9628",
    "common-voice-fa/54db74edf7f05f77",
    "common-voice-fa/b66de0d6017a4a2a",
    "common-voice-tw/a84d1065556bc666",
]
REF_SECONDS = 3.5
TAGS = {"librispeech-train-clean-100": "librispeech", "speechocean762": "speechocean",
        "common-voice-fa": "cv-fa", "common-voice-tw": "cv-tw"}
LICENSES = {"librispeech-train-clean-100": "CC BY 4.0 (LibriSpeech, Panayotov et al. 2015)",
            "speechocean762": "Apache-2.0 (speechocean762)",
            "common-voice-fa": "CC0 (Mozilla Common Voice)",
            "common-voice-tw": "CC0 (Mozilla Common Voice)"}


ATTRIBUTION_HEAD = """# Attribution of the bundled audio

Every clip in `assets/` is a short excerpt of a public recording from the project's speech pool
(`shared/data/speech`, see its README). Clips were cut (start / length below), downmixed to mono,
resampled to 16 kHz, peak-normalised and stored as 16-bit PCM by `assets/make_assets.py`; nothing
else was changed. All speakers are in the speaker-disjoint dev split (10 %, seed 0), so the shipped
checkpoints never trained on them.

- `examples/`: the Verify tab's cached examples (same-speaker and different-speaker pairs).
- `reference/`: the Voice map's reference set (8 speakers x 3 clips).

Licenses: LibriSpeech (train-clean-100) CC BY 4.0, Panayotov et al. 2015, "LibriSpeech: an ASR corpus
based on public domain audio books"; speechocean762 Apache-2.0 (Zhang et al. 2021, free for commercial
and non-commercial use); Mozilla Common Voice (Persian, Twi) CC0. Speaker ids are the corpora's own
(anonymous) ids.

"""


def cut(pool: Path, rel: str, start: float, length: float) -> np.ndarray:
    data, sr = sf.read(str(pool / rel), dtype="float32", always_2d=True)
    wave = data.mean(axis=1)
    if sr != SAMPLE_RATE:
        wave = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), sr, SAMPLE_RATE).numpy()
    a = int(start * SAMPLE_RATE)
    wave = wave[a: a + int(length * SAMPLE_RATE)]
    peak = float(np.max(np.abs(wave))) or 1.0
    return (wave * min(1.0, 0.89 / peak)).astype(np.float32)


def reference_plan(pool: Path) -> list[tuple[str, str, float, float]]:
    """Three clips per reference speaker: three files, or three segments of a long single file."""
    rows = [json.loads(line) for line in open(pool / "manifest.jsonl")]
    plan = []
    for spk in REFERENCE_SPEAKERS:
        files = sorted((r for r in rows if r["label"] == spk), key=lambda r: r["audio_filepath"])
        files = [r for r in files if r["duration"] >= 3.0]
        tag = TAGS[spk.split("/")[0]] + "-" + spk.split("/")[1].replace("SPEAKER", "")[:8]
        if len(files) >= 3:
            picks = [(f["audio_filepath"], 0.0) for f in files[:3]]
        else:
            f = files[0]
            step = max(REF_SECONDS, (f["duration"] - REF_SECONDS) / 2)
            picks = [(f["audio_filepath"], min(i * step, max(0.0, f["duration"] - REF_SECONDS)))
                     for i in range(3)]
        for i, (rel, start) in enumerate(picks):
            plan.append((f"{tag}_{i + 1}.flac", rel, round(start, 2), REF_SECONDS))
    return plan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "speech"))
    args = ap.parse_args()
    pool = Path(args.data)
    table = []
    for sub, items, fmt in [("examples", EXAMPLES, "WAV"),
                            ("reference", reference_plan(pool), "FLAC")]:
        (HERE / sub).mkdir(exist_ok=True)
        for name, rel, start, length in items:
            wave = cut(pool, rel, start, length)
            sf.write(HERE / sub / name, wave, SAMPLE_RATE, format=fmt, subtype="PCM_16")
            corpus, speaker, src = rel.split("/", 2)
            table.append(f"| {sub}/{name} | {corpus} | {speaker} | {src} | {start:.2f} | "
                         f"{len(wave) / SAMPLE_RATE:.2f} | {LICENSES[corpus]} |")
    (HERE / "ATTRIBUTION.md").write_text(
        ATTRIBUTION_HEAD + "| file | corpus | speaker | original file | start s | length s | license |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
