"""Do the silent edges of a dev clip alone tell who recorded it?

Every dev speaker was recorded in one session, so two clips of one speaker share a room, a microphone and a noise
floor. This embeds only the silence before the first and after the last word of each dev clip (`audio.edge_silence`
with the word detector, less 0.3 s next to the words; clips with at least 0.5 s of it), as it is: a checkpoint's
canonical edges are not applied, since they would cut that silence away. It prints the within-corpus EER.
Far below 50 % means the silence identifies the session, a cue that the dev trials reward and that a person
enrolled on one day and tested on another would not give.

    python tools/silence_cue.py checkpoints/ecapa-small.pt [more checkpoints]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speaker_core.api import window_of  # noqa: E402
from speaker_core.audio import SAMPLE_RATE, active_frames, edge_silence  # noqa: E402
from speaker_core.evaluate import (embed_waves, evaluate_embeddings, items_from_manifest,  # noqa: E402
                                   items_with_trials, load_for_evaluation)
from speaker_core.scoring import score_norm_of  # noqa: E402

MIN_SILENCE = 0.5   # seconds of edge silence a clip needs to take part
MARGIN = 0.3        # seconds next to the words left out: quiet onsets and tails the word detector misses


def edge_audio(wave: np.ndarray) -> np.ndarray:
    """The clip's lead and tail silence, joined, without the MARGIN next to the words."""
    lead, tail = (max(0, int((s - MARGIN) * SAMPLE_RATE)) for s in edge_silence(wave, "words"))
    return np.concatenate([wave[:lead], wave[wave.size - tail:] if tail else wave[:0]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--manifest", default="data/dev.jsonl")
    a = ap.parse_args(argv)
    _, waves, trials = items_with_trials(items_from_manifest(a.manifest))
    edges = [edge_audio(w) for w in waves]
    ok = np.array([e.size >= MIN_SILENCE * SAMPLE_RATE for e in edges])
    trials = {s: [t for t in tr if ok[t[0]] and ok[t[1]]] for s, tr in trials.items()}
    trials = {s: tr for s, tr in trials.items() if sum(t[2] for t in tr) >= 5 and sum(1 - t[2] for t in tr) >= 5}
    active = np.mean(np.concatenate([active_frames(e) for e, k in zip(edges, ok) if k]))
    print(f"{ok.sum()} of {len(waves)} clips have at least {MIN_SILENCE:g} s of silence around their words "
          f"({MARGIN:g} s away from them); the energy detector calls {active:.1%} of its frames active")
    filler = np.zeros(int(MIN_SILENCE * SAMPLE_RATE), np.float32)   # for clips left out of every trial
    for path in a.checkpoints:
        model = load_for_evaluation(path)
        emb = embed_waves(model, [e if k else filler for e, k in zip(edges, ok)], window=window_of(model.meta))
        for scale, norm in (("cosine", None), ("as-norm", score_norm_of(model.meta, model.emb_dim))):
            if scale == "as-norm" and norm is None:
                continue
            res, _ = evaluate_embeddings(emb, trials, norm=norm)
            cells = ", ".join(f"{s} {v['eer']:.1f} % ({v['n_target']} / {v['n_nontarget']})"
                              for s, v in res["sets"].items())
            print(f"{path} [{scale}] silence only, EER (same / different-speaker pairs): {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
