"""tools/compare_checkpoints.py: paired bootstrap of two checkpoints on the same dev trials."""
import importlib.util
import json
import sys
from pathlib import Path

from test_evaluate import _folder, _tiny_checkpoint

from speaker_core.evaluate import items_from_folder

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("compare_checkpoints", ROOT / "tools" / "compare_checkpoints.py")
cmp = importlib.util.module_from_spec(spec)
sys.modules["compare_checkpoints"] = cmp
spec.loader.exec_module(cmp)


def _manifest_and_checkpoint(tmp_path):
    """A dev manifest over a small folder of two sets, and a tiny checkpoint."""
    root = str(tmp_path / "eval")
    _folder(root)
    manifest = tmp_path / "dev.jsonl"
    with open(manifest, "w") as f:
        for it in items_from_folder(root):
            f.write(json.dumps({"audio_filepath": it["path"], "label": f"{it['set']}/{it['speaker']}",
                                "corpus": it["set"]}) + "\n")
    ck = str(tmp_path / "tiny.pt")
    _tiny_checkpoint(ck)
    return manifest, ck


def test_a_checkpoint_against_itself_differs_by_exactly_zero(tmp_path, capsys):
    manifest, ck = _manifest_and_checkpoint(tmp_path)
    assert cmp.main([ck, ck, "--manifest", str(manifest), "--bootstrap", "50"]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines()[2:]]
    assert [r[0] for r in rows] == ["setA", "setB", "mean", "pooled"]
    for r in rows:   # set, base, cand, diff, lo, "..", hi, P(better)
        assert r[1] == r[2] and float(r[3]) == 0.0 and float(r[4]) == float(r[6]) == 0.0 and float(r[7]) == 0.0


def test_padding_only_the_second_clip_embeds_each_clip_clean_and_padded(tmp_path, capsys, monkeypatch):
    manifest, ck = _manifest_and_checkpoint(tmp_path)
    seen, embed = [], cmp.embed_waves
    monkeypatch.setattr(cmp, "embed_waves", lambda m, w, **k: seen.append([len(x) for x in w]) or embed(m, w, **k))
    lengths = {}
    for side in ("both", "second"):
        seen.clear()
        assert cmp.main([ck, ck, "--manifest", str(manifest), "--bootstrap", "20", "--pad-edges", "1.0",
                         "--pad-side", side]) == 0
        out = capsys.readouterr().out.splitlines()
        assert ("the second clip of each trial" in out[0]) == (side == "second")
        assert [r.split()[0] for r in out[2:]] == ["setA", "setB", "mean", "pooled"]
        lengths[side] = [list(x) for x in seen]
    padded = lengths["both"][0]
    assert lengths["both"] == [padded, padded]                     # base and candidate: every clip padded
    clean = lengths["second"][0]
    assert [p - c for p, c in zip(padded, clean)] == [32000] * len(clean)   # 1 s each side at 16 kHz
    assert lengths["second"] == [clean, padded, clean, padded]     # each model: clips as they are, then padded
