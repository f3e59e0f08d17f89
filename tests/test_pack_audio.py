"""tools/pack_audio.py: the training set survives the trip to a lent GPU machine (Opus there and back)."""
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from speaker_core.data import AudioCache, read_manifest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("pack_audio", ROOT / "tools" / "pack_audio.py")
pack_audio = importlib.util.module_from_spec(spec)
sys.modules["pack_audio"] = pack_audio  # its decode pool pickles functions by module name
spec.loader.exec_module(pack_audio)


def test_pack_unpack_rebuilds_the_cache(tmp_path):
    rng = np.random.RandomState(0)
    rows = []
    for i, n in enumerate([16000, 8000, 40000, 3200, 24000]):
        t = np.arange(n) / 16000
        x = 0.3 * np.sin(2 * np.pi * (120 + 30 * i) * t * (1 + 0.1 * np.sin(2 * np.pi * 2 * t))) + 0.01 * rng.randn(n)
        p = tmp_path / "pool" / f"{i}.wav"
        p.parent.mkdir(exist_ok=True)
        sf.write(p, x.astype(np.float32), 16000)
        rows.append({"audio_filepath": str(p), "duration": n / 16000, "label": f"c/{i % 2}", "corpus": "c"})
    src = tmp_path / "here"
    src.mkdir()
    with open(src / "train.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    pack_audio.pack(str(src / "train.jsonl"), str(tmp_path / "pack"), chunks=2)
    original = AudioCache([r["audio_filepath"] for r in rows], cache_path=str(src / "cache_train.npz"))

    for r in rows:  # the far side has no access to the audio files
        os.remove(r["audio_filepath"])
    pack_audio.unpack(str(tmp_path / "pack"), str(tmp_path / "there"))
    there = read_manifest(str(tmp_path / "there" / "train.jsonl"))
    assert there == read_manifest(str(src / "train.jsonl"))
    cache = AudioCache([r["audio_filepath"] for r in there], cache_path=str(tmp_path / "there" / "cache_train.npz"))
    for i in range(len(rows)):
        a, b = original.get(i), cache.get(i)
        assert len(a) == len(b)
        # lossy but close: Opus at ~30 kb/s keeps the waveform well correlated away from clip edges
        core = slice(960, len(a) - 960)
        assert np.corrcoef(a[core], b[core])[0, 1] > 0.9
