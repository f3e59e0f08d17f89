"""Command line: `python -m speaker_core COMMAND ...`; `python -m speaker_core` alone lists the commands."""
from __future__ import annotations

import argparse
import json
import sys


def cmd_embed(argv) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core embed", description="Embed audio files into an (N, D) .npy array.")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", default=None, help="shipped name or path to a .pt/.nemo checkpoint")
    ap.add_argument("--out", default="embeddings.npy")
    ap.add_argument("--raw", action="store_true", help="do not L2-normalise (NeMo get_embedding values)")
    ap.add_argument("--device", default=None)
    a = ap.parse_args(argv)
    import numpy as np

    from .api import load_model

    model = load_model(a.model, device=a.device)
    embs = model.embed_batch(a.files, normalize=not a.raw)
    np.save(a.out, embs)
    print(f"wrote {embs.shape[0]} x {embs.shape[1]} embeddings to {a.out} ({model.name})")
    return 0


def cmd_verify(argv) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core verify", description="Are two clips the same speaker?")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threshold", type=float, default=None, help="threshold on the checkpoint's score scale (default: its calibrated one)")
    ap.add_argument("--device", default=None)
    _clip_options(ap)
    a = ap.parse_args(argv)
    from .api import load_model

    clips = _read_clips([a.a, a.b], a.max_seconds)
    model = load_model(a.model, device=a.device)
    r = model.verify(*clips, threshold=a.threshold)
    print(json.dumps({"score": round(r.score, 4), "same_speaker": r.same_speaker, "threshold": round(r.threshold, 4),
                      "scale": model.scale, "model": model.name}))
    return 0


def _clip_options(ap) -> None:
    from .audio import MAX_SECONDS

    ap.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="use only the first this many seconds "
                    f"of each clip, as the app does (default: {MAX_SECONDS:g}; 0: whole clips)")


def _read_clips(paths, max_seconds: float):
    """Load clips as the app does: errors name the file, faint noise is refused, truncation is noted on stderr."""
    from .audio import AudioError, load_clip, require_speech

    clips = []
    for p in paths:
        try:
            clips.append(require_speech(load_clip(p, max_seconds=max_seconds or None)))
        except AudioError as e:
            raise type(e)(f"{p}: {e}") from None
        if clips[-1].truncated:
            print(f"note: {p} is {clips[-1].orig_duration:.0f} s long: only the first {max_seconds:g} s were used",
                  file=sys.stderr)
    return clips


def _gallery_options(ap, model: bool = True) -> None:
    ap.add_argument("--gallery", default="gallery.db", help="SQLite gallery file, as the app keeps it locally "
                                                          "(default: gallery.db; only enroll creates one)")
    if model:
        ap.add_argument("--model", default=None, help="shipped name or path to a .pt/.nemo checkpoint")
        ap.add_argument("--device", default=None)


def _same_model(g, model_id: str, path: str) -> None:
    """A gallery file holds one model's voiceprints: say which --model reads it."""
    from .gallery import GalleryError

    held = g.model()
    if held is None or held[0] == model_id:
        return
    name, this = held[0].split("@")[0], model_id.split("@")[0]
    if name == this:
        raise GalleryError(f"{path} holds voiceprints made with another version of '{name}' ({held[0]}, this one is "
                           f"{model_id}): its weights changed since, so enroll the speakers again into a new "
                           "--gallery file.")
    raise GalleryError(f"{path} holds voiceprints made with '{held[0]}', not '{model_id}': pass --model {name}, or "
                       "use another --gallery file.")


def cmd_enroll(argv) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core enroll", description="Enroll a speaker in a gallery file from "
                                 "one or more clips; the voiceprint is the normalised mean of their embeddings.")
    ap.add_argument("name")
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--add", action="store_true", help="add the clips to a speaker already enrolled")
    _gallery_options(ap)
    _clip_options(ap)
    a = ap.parse_args(argv)
    from .api import load_model
    from .gallery import Gallery, GalleryError, earlier_copies, enrollment_consistency

    clips = _read_clips(a.clips, a.max_seconds)   # every clip is checked before the gallery is touched
    model = load_model(a.model, device=a.device)
    embs, model_id = model.embed_batch(clips), model.model_id
    with Gallery(a.gallery) as g:
        _same_model(g, model_id, a.gallery)
        stored = g.clip_embeddings(a.name)[1] if a.add and a.name in g else []
        copies = earlier_copies(embs, stored)   # a file given twice, or already enrolled, counts once
        keep = [i for i, j in enumerate(copies) if j is None]
        for i, j in enumerate(copies):
            if j is not None:
                same = "a clip already enrolled" if j < 0 else a.clips[j]
                print(f"note: {a.clips[i]} is the same audio as {same}, so it was not added again", file=sys.stderr)
        if not keep:
            raise GalleryError(f"Every clip is already in {a.name}'s voiceprint: nothing was added.")
        consistency = enrollment_consistency(model.compare_many, embs[keep], stored)
        for i, c in zip(keep, consistency):
            if c is not None and c < model.threshold:
                print(f"note: {a.clips[i]} scores {c:.2f} against the speaker's other clips, under the threshold "
                      f"{model.threshold:.2f}: another person, or a poor recording?", file=sys.stderr)
        write = g.add_clips if a.add else g.enroll
        row = write(a.name, embs[keep], model_id, durations=[clips[i].duration for i in keep])
    print(json.dumps({"speaker": row.name, "clips": row.clips, "model": model_id, "gallery": a.gallery,
                      "consistency": [None if c is None else round(c, 4) for c in consistency],
                      "skipped": [a.clips[i] for i, j in enumerate(copies) if j is not None]}, ensure_ascii=False))
    return 0


def cmd_identify(argv) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core identify", description="Who in a gallery file is speaking? "
                                 "Prints JSON as the app's /identify does: speaker is null below the threshold.")
    ap.add_argument("clip")
    ap.add_argument("--threshold", type=float, default=None, help="on the checkpoint's score scale (default: its "
                                                                   "calibrated one)")
    ap.add_argument("--top-k", type=int, default=5)
    _gallery_options(ap)
    _clip_options(ap)
    a = ap.parse_args(argv)
    from .api import load_model
    from .gallery import GalleryError

    clip = _read_clips([a.clip], a.max_seconds)[0]
    model = load_model(a.model, device=a.device)
    t = model.threshold if a.threshold is None else float(a.threshold)
    e, model_id = model.embed_clip(clip), model.model_id
    with _existing_gallery(a.gallery) as g:
        if not len(g):
            raise GalleryError(f"The gallery {a.gallery} is empty: enroll a speaker first.")
        _same_model(g, model_id, a.gallery)
        best, ranking = g.identify(e, top_k=a.top_k, threshold=t, model_name=model_id, scorer=model.compare_many)
    print(json.dumps({"speaker": best.name if best else None, "score": round(ranking[0].score, 4),
                      "threshold": round(t, 4), "scale": model.scale, "model": model_id,
                      "ranking": [{"speaker": m.name, "score": round(m.score, 4)} for m in ranking]},
                     ensure_ascii=False))
    return 0


def _existing_gallery(path: str):
    from pathlib import Path

    from .gallery import Gallery, GalleryError

    if path != ":memory:" and not Path(path).is_file():   # reading must not leave an empty database behind
        raise GalleryError(f"No gallery file {path}: enroll a speaker first.")
    return Gallery(path)


def cmd_speakers(argv) -> int:
    ap = argparse.ArgumentParser(prog="speaker_core speakers", description="List the speakers of a gallery file "
                                 "as JSON, after deleting one with --delete (voiceprints are biometric data).")
    ap.add_argument("--delete", metavar="NAME", default=None, help="delete this speaker and all their clips")
    _gallery_options(ap, model=False)
    a = ap.parse_args(argv)
    from .gallery import GalleryError

    with _existing_gallery(a.gallery) as g:
        if a.delete is not None and not g.delete(a.delete):
            raise GalleryError(f"No speaker named '{a.delete}' is enrolled.")
        rows = g.speakers()
    print(json.dumps([{"speaker": r.name, "clips": r.clips, "enrolled": r.created, "updated": r.updated,
                       "model": r.model} for r in rows], ensure_ascii=False))
    return 0


def _lazy(module: str, name: str):
    """A command whose module (torch training, evaluation) is imported only when it runs."""
    def run(argv):
        import importlib

        return getattr(importlib.import_module(module, __package__), name)(argv)
    return run


COMMANDS = {
    "embed": (cmd_embed, "embed audio files into an (N, D) .npy array"),
    "verify": (cmd_verify, "are two clips the same speaker? (JSON)"),
    "enroll": (cmd_enroll, "enroll a speaker in a gallery file from one or more clips"),
    "identify": (cmd_identify, "who in a gallery file is speaking? (JSON)"),
    "speakers": (cmd_speakers, "list a gallery file's speakers, or delete one"),
    "prepare": (_lazy(".data", "main_prepare"), "build speaker-disjoint train/dev manifests from a speech folder"),
    "train": (_lazy(".train", "main_train"), "train or warm-restart a model from a YAML config (torchrun too)"),
    "evaluate": (_lazy(".evaluate", "main_evaluate"), "EER, minDCF, DET curve and score histograms on trials"),
    "calibrate": (_lazy(".evaluate", "main_calibrate"), "add an AS-norm cohort and a threshold to a checkpoint"),
    "fuse": (_lazy(".fusion", "main_fuse"), "fuse calibrated checkpoints into one default"),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        asked = bool(argv) and argv[0] in ("-h", "--help")
        if argv and not asked:
            print(f"error: unknown command '{argv[0]}'", file=sys.stderr)
        print("usage: python -m speaker_core COMMAND ... (COMMAND -h for its options)\n\ncommands:", file=sys.stderr)
        for name, (_, what) in COMMANDS.items():
            print(f"  {name:<10} {what}", file=sys.stderr)
        return 0 if asked else 2
    from .audio import AudioError
    from .checkpoint import CheckpointError
    from .gallery import GalleryError

    try:
        return int(COMMANDS[argv[0]][0](argv[1:]) or 0)
    except (AudioError, CheckpointError, GalleryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:  # a manifest, config or trials path
        print(f"error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
