"""End-to-end check of the public API on real speakers the models never trained on.

Starts nothing itself: run the app first, with a throw-away gallery, e.g.

    SPEAKER_GALLERY_PATH=/tmp/demo-gallery.db python app.py &
    python benchmarks/api_demo.py [--url http://127.0.0.1:7860/] [--data ../shared/data/speech]

1. /verify on 12 within-corpus pairs (6 same-speaker, 6 different-speaker) of dev-split speakers
   (speaker_core.data.split_speakers, 10 %, seed 0: never trained on), using files that are not
   bundled in assets/;
   then checks that two (near-)silent real recordings are refused with a clear message;
2. /enroll 5 speechocean762 dev speakers from 3 clips each, then /identify each one's 4th clip.
The pairs and speakers are fixed below, chosen before looking at any score. The demo speakers
are deleted again at the end (--keep to leave them).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parent.parent

# (clip A, clip B, same speaker?) relative to the speech pool
VERIFY_PAIRS = [
    ("speechocean762/SPEAKER1502/{0}", "speechocean762/SPEAKER1502/{1}", True),
    ("speechocean762/SPEAKER2282/{0}", "speechocean762/SPEAKER2282/{1}", True),
    ("speechocean762/SPEAKER5401/{0}", "speechocean762/SPEAKER5401/{1}", True),
    ("speechocean762/SPEAKER9107/{0}", "speechocean762/SPEAKER9107/{1}", True),
    ("common-voice-fa/ef02fb7fe0eacb6b/{2}", "common-voice-fa/ef02fb7fe0eacb6b/{3}", True),
    ("common-voice-fa/b66de0d6017a4a2a/{9}", "common-voice-fa/b66de0d6017a4a2a/{10}", True),
    ("speechocean762/SPEAKER1503/{0}", "speechocean762/SPEAKER2089/{0}", False),
    ("speechocean762/SPEAKER2450/{0}", "speechocean762/SPEAKER5418/{0}", False),
    ("speechocean762/SPEAKER6099/{0}", "speechocean762/SPEAKER9558/{0}", False),
    ("speechocean762/SPEAKER9613/{0}", "speechocean762/SPEAKER9630/{0}", False),
    ("common-voice-fa/ef02fb7fe0eacb6b/{1}", "common-voice-fa/54db74edf7f05f77/{5}", False),
    ("librispeech-train-clean-100/2384/{0}", "librispeech-train-clean-100/4397/{0}", False),
]
# Two real Common Voice recordings of that speaker are (near-)silent: the app must refuse them
# with a clear message instead of scoring them.
NEAR_SILENT = ["common-voice-fa/ef02fb7fe0eacb6b/{0}", "common-voice-fa/ef02fb7fe0eacb6b/{4}"]
ENROLL_SPEAKERS = ["speechocean762/SPEAKER0093", "speechocean762/SPEAKER0567",
                   "speechocean762/SPEAKER1044", "speechocean762/SPEAKER1099",
                   "speechocean762/SPEAKER1469"]


def files_of(pool: Path, speaker: str) -> list[str]:
    return sorted(str(p) for p in (pool / speaker).iterdir() if p.is_file())


def resolve(pool: Path, pattern: str) -> str:
    speaker, idx = pattern.rsplit("/", 1)
    return files_of(pool, speaker)[int(idx.strip("{}"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860/")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "speech"))
    ap.add_argument("--keep", action="store_true", help="leave the demo speakers enrolled")
    ap.add_argument("--model", default=None, help="a checkpoint name from the app's selector (default: the app's "
                                                  "default), used at its calibrated threshold")
    args = ap.parse_args()
    pool = Path(args.data)
    c = Client(args.url, verbose=False)
    model = (args.model,) if args.model else ()   # no threshold: the app uses the model's calibrated one

    # check the speakers really are unseen: in the dev split
    import sys
    sys.path.insert(0, str(ROOT))
    from speaker_core.data import labels_by_corpus, split_speakers
    rows = [json.loads(line) for line in open(pool / "manifest.jsonl")]
    _, dev = split_speakers(labels_by_corpus(rows), 0.1, 0)
    used = {p.rsplit("/", 1)[0] for a, b, _ in VERIFY_PAIRS for p in (a, b)} | set(ENROLL_SPEAKERS)
    assert used <= set(dev), sorted(used - set(dev))

    print("== /verify: 12 within-corpus pairs of unseen speakers")
    correct = 0
    for a, b, same in VERIFY_PAIRS:
        fa, fb = resolve(pool, a), resolve(pool, b)
        r = c.predict(handle_file(fa), handle_file(fb), *model, api_name="/verify")[0]
        ok = r["same_speaker"] == same
        correct += ok
        print(f"{'ok ' if ok else 'BAD'} {'same' if same else 'diff'}  score {r['score']:+.3f} "
              f"(threshold {r['threshold']:.3f})  {Path(fa).parent.name}/{Path(fa).name} vs "
              f"{Path(fb).parent.name}/{Path(fb).name}")
    print(f"verify: {correct}/12 correct")

    print("== quality gate: real but (near-)silent recordings are refused, not scored")
    from gradio_client.exceptions import AppError
    for p in NEAR_SILENT:
        f = resolve(pool, p)
        try:
            r = c.predict(handle_file(f), handle_file(resolve(pool, VERIFY_PAIRS[4][1])), *model,
                          api_name="/verify")[0]
            print(f"BAD {Path(f).name} was scored: {r['score']:+.3f}")
        except AppError as e:
            print(f"ok  {Path(f).name} refused: {e}")

    print("== /enroll 5 speakers x 3 clips, /identify the 4th clip")
    names = [f"demo {s.split('/')[1]}" for s in ENROLL_SPEAKERS]
    for name in names:  # a re-run starts clean
        try:
            c.predict(name, api_name="/delete_speaker")
        except Exception:
            pass
    for name, spk in zip(names, ENROLL_SPEAKERS):
        clips = [handle_file(f) for f in files_of(pool, spk)[:3]]
        r = c.predict(name, clips, None, False, *model, api_name="/enroll")[0]
        agree = ", ".join(f"{x['score']:.2f}" for x in r.get("consistency", []) if x["score"] is not None)
        print(f"enrolled {r['speaker']!r} from {r['clips']} clips (each against the other two: {agree})"
              + "".join(f"\n    note: {w}" for w in r.get("warnings", [])))
    hits = 0
    for name, spk in zip(names, ENROLL_SPEAKERS):
        r = c.predict(handle_file(files_of(pool, spk)[3]), *model, api_name="/identify")[0]
        top = ", ".join(f"{x['speaker']} {x['score']:.2f}" for x in r["ranking"][:3])
        ok = r["speaker"] == name
        hits += ok
        print(f"{'ok ' if ok else 'BAD'} 4th clip of {name!r}: identified as {r['speaker']!r} "
              f"(score {r['score']:.3f}, threshold {r['threshold']:.3f}; top: {top})")
    print(f"identify: {hits}/5 correct")
    if not args.keep:
        for name in names:
            c.predict(name, api_name="/delete_speaker")


if __name__ == "__main__":
    main()
