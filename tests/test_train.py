import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from speaker_core.train import load_config, train


def _make_pool(root, n_spk=6, n_files=3, dur=1.2, sr=16000):
    import soundfile as sf
    rows = []
    rng = np.random.RandomState(0)
    for s in range(n_spk):
        f0 = 100 + 25 * s
        for k in range(n_files):
            t = np.arange(int(dur * sr)) / sr
            x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 3 * f0 * t) + 0.02 * rng.randn(len(t))
            p = os.path.join(root, "pool", f"c/{s}/{k}.wav")
            os.makedirs(os.path.dirname(p), exist_ok=True)
            sf.write(p, x.astype(np.float32), sr)
            rows.append({"audio_filepath": p, "duration": dur, "label": f"c/{s}", "corpus": "c"})
    tr = [r for r in rows if r["label"] not in ("c/0", "c/1")]
    dv = [r for r in rows if r["label"] in ("c/0", "c/1")]
    for name, rr in (("train", tr), ("dev", dv)):
        with open(os.path.join(root, f"{name}.jsonl"), "w") as f:
            for r in rr:
                f.write(json.dumps(r) + "\n")
    np.save(os.path.join(root, "teacher.npy"), rng.randn(len(tr), 8).astype(np.float32))
    return tr, dv


def _cfg(root, out, **kw):
    sets = [f"out={out}", f"data.train={root}/train.jsonl", f"data.dev={root}/dev.jsonl", f"data.cache_dir={root}",
            "data.crop_min=0.5", "data.crop_max=0.8", "batch_size=4", "threads=1", "epochs=2",
            "max_steps_per_epoch=2", "model.filters=16", "model.epilog=32", "model.decoder.emb_sizes=[16]",
            "model.decoder.normalize_weight=true", f"teacher.path={root}/teacher.npy", "teacher.weight=1.0",
            "val.crop_eval=0.5", "tqdm_interval=1000", f"export={out}/export.pt"]
    sets += [f"{k}={v}" for k, v in kw.items()]
    return load_config("configs/speakernet-m.yaml", sets)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _ddp_worker(rank, world, port, cfg, out):
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    res = train(cfg)
    torch.save(res["model"].state_dict(), os.path.join(out, f"rank{rank}.pt"))


def test_ddp_two_processes_gloo(tmp_path):
    root = str(tmp_path)
    _make_pool(root)
    out = os.path.join(root, "ddp")
    os.makedirs(out, exist_ok=True)
    cfg = _cfg(root, out, **{"consistency.weight": 1.0})   # its second view goes through the one DDP forward
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg, out), nprocs=2, join=True)
    a = torch.load(os.path.join(out, "rank0.pt"))
    b = torch.load(os.path.join(out, "rank1.pt"))
    for k in a:  # DDP keeps the replicas identical
        if a[k].is_floating_point() and "running" not in k:
            assert torch.allclose(a[k], b[k], atol=1e-6), k
    for f in ("last.pt", "best.pt", "export.pt", "history.json"):
        assert os.path.exists(os.path.join(out, f)), f
    hist = json.load(open(os.path.join(out, "history.json")))
    assert len(hist) == 2 and "dev" in hist[0]
    from speaker_core.checkpoint import load_checkpoint
    m = load_checkpoint(os.path.join(out, "export.pt"))
    cal = m.meta["calibration"]
    assert -1 <= cal["threshold"] <= 1 and len(cal["target_scores"]) > 0
    assert m.meta["recipe"]["world_size"] == 2 and "train" in m.meta["data"]
    assert m.config.decoder.num_classes == 0
    assert m.meta["recipe"]["consistency"]["weight"] == 1.0
    assert all(np.isfinite(h["consistency_loss"]) and h["consistency_loss"] > 0 for h in hist)


def test_resume_restores_state(tmp_path):
    root = str(tmp_path)
    _make_pool(root)
    full = train(_cfg(root, os.path.join(root, "full")))
    part = os.path.join(root, "part")
    train(_cfg(root, part, stop_after_epochs=1))
    st = torch.load(os.path.join(part, "last.pt"), weights_only=False)
    assert st["epoch"] == 0 and "optimizer" in st and "rng" in st and "scheduler" in st
    res = train(_cfg(root, part), resume=True)
    assert [h["epoch"] for h in res["history"]] == [0, 1]
    sa, sb = full["model"].state_dict(), res["model"].state_dict()
    for k in sa:
        if sa[k].is_floating_point():
            assert torch.allclose(sa[k], sb[k], atol=1e-5), k


def test_init_from_exported_checkpoint(tmp_path):
    """A warm restart copies every exported tensor (fp16 -> fp32) and leaves the new classifier head alone."""
    from speaker_core.checkpoint import load_checkpoint
    from speaker_core.train import build_model, init_from
    root = str(tmp_path)
    _make_pool(root)
    out = os.path.join(root, "a")
    train(_cfg(root, out, **{"teacher.weight": 0.0}))
    cfg = _cfg(root, os.path.join(root, "b"))
    fresh = build_model(cfg, num_classes=7)
    head = fresh.decoder.final.weight.detach().clone()
    n = init_from(fresh, os.path.join(out, "export.pt"))
    src = load_checkpoint(os.path.join(out, "export.pt")).state_dict()
    assert n == len(src) > 10
    own = fresh.state_dict()
    for k, v in src.items():
        assert torch.equal(own[k], v.to(own[k].dtype)), k
    assert torch.equal(fresh.decoder.final.weight, head)
    # and the trainer uses it: its first epoch starts from the exported encoder, not from scratch
    res = train(_cfg(root, os.path.join(root, "c"), init=os.path.join(out, "export.pt"), epochs=1,
                     **{"teacher.weight": 0.0}))
    assert res["history"][0]["steps"] == 2


def test_warm_restart_head_starts_at_the_speaker_prototypes(tmp_path):
    """With init=, each classifier row starts at its speaker's mean embedding, so the restarted model already
    classifies its training speakers, whatever the seed; init_head=random keeps the old fresh head."""
    from speaker_core.data import AudioCache, read_manifest
    from speaker_core.train import build_model, head_from_prototypes, init_from
    root = str(tmp_path)
    _make_pool(root)
    out = os.path.join(root, "a")
    train(_cfg(root, out, **{"teacher.weight": 0.0, "epochs": 4, "max_steps_per_epoch": 6}))
    rows = read_manifest(os.path.join(root, "train.jsonl"))
    labels = sorted({r["label"] for r in rows})
    cache = AudioCache([r["audio_filepath"] for r in rows])
    y = torch.tensor([labels.index(r["label"]) for r in rows])
    waves = torch.from_numpy(np.stack([cache.get(i)[:16000] for i in range(len(rows))]))
    lengths = torch.full((len(rows),), 16000)
    accs = {}
    for seed, head in ((1, "prototypes"), (2, "prototypes"), (1, "random")):
        torch.manual_seed(seed)
        model = build_model(_cfg(root, os.path.join(root, "b")), num_classes=len(labels))
        init_from(model, os.path.join(out, "export.pt"))
        if head == "prototypes":
            head_from_prototypes(model, cache, rows, labels, torch.device("cpu"))
            w = model.decoder.final.weight
            assert torch.allclose(w.norm(dim=1), torch.ones(len(labels)), atol=1e-5)
        model.eval()
        with torch.no_grad():
            pred = model.decoder.logits(model(waves, lengths)).argmax(1)
        accs[(seed, head)] = float((pred == y).float().mean())
    assert accs[(1, "prototypes")] == accs[(2, "prototypes")] >= 0.75    # the seed no longer matters
    assert accs[(1, "prototypes")] > accs[(1, "random")]
    first = {}
    for head in ("prototypes", "random"):
        res = train(_cfg(root, os.path.join(root, head), init=os.path.join(out, "export.pt"), epochs=1,
                         init_head=head, **{"teacher.weight": 0.0, "augment.enabled": False}))
        first[head] = res["history"][0]["train_loss"]
    assert first["prototypes"] < first["random"], first


def test_speaker_augmentation_trains_restarts_and_exports(tmp_path):
    """data.speaker_speeds: the head has a row per speaker and per sped-up copy; a warm restart points the
    copies' rows at the sped-up clips (not at the originals); distillation skips the copies; export drops them."""
    from speaker_core.checkpoint import load_checkpoint
    from speaker_core.train import export_from_run
    root = str(tmp_path)
    tr, _ = _make_pool(root)
    n = len({r["label"] for r in tr})
    sp = {"data.speaker_speeds": "[0.9,1.1]", "data.p_speaker_speed": 0.5}
    out = os.path.join(root, "a")
    res = train(_cfg(root, out, **sp))
    assert res["model"].decoder.final.weight.shape[0] == 3 * n
    assert res["model"].labels[n:] == [f"{l}@speed{f}" for f in ("0.9", "1.1") for l in sorted({r["label"] for r in tr})]
    assert all(np.isfinite(h["kd_loss"]) for h in res["history"])
    from speaker_core.data import AudioCache
    from speaker_core.train import build_model, head_from_prototypes, init_from
    labels = sorted({r["label"] for r in tr})
    model = build_model(_cfg(root, os.path.join(root, "x")), num_classes=3 * n)
    init_from(model, os.path.join(out, "export.pt"))
    head_from_prototypes(model, AudioCache([r["audio_filepath"] for r in tr]), tr, labels, torch.device("cpu"),
                         speaker_speeds=(0.9, 1.1))
    w = model.decoder.final.weight.detach()
    assert torch.allclose(w.norm(dim=1), torch.ones(3 * n), atol=1e-5)
    # a copy's row is the mean of its speaker's clips played at that speed, as the model embeds them
    from speaker_core.augment import resample_speed
    from speaker_core.evaluate import embed_waves
    model.eval()
    for k, f in enumerate((0.9, 1.1)):
        waves = [resample_speed(torch.from_numpy(AudioCache([r["audio_filepath"]]).get(0)), f).numpy()
                 for r in tr if r["label"] == labels[0]]
        with torch.no_grad():
            h = torch.nn.functional.normalize(
                model.decoder.classifier_input(torch.from_numpy(embed_waves(model, waves)).float()), dim=1)
        want = torch.nn.functional.normalize(h.sum(0), dim=0)
        assert torch.allclose(w[(k + 1) * n], want, atol=1e-5), f
    b = train(_cfg(root, os.path.join(root, "b"), init=os.path.join(out, "export.pt"), epochs=1, **sp))
    assert b["model"].decoder.final.weight.shape[0] == 3 * n
    meta = export_from_run(_cfg(root, os.path.join(root, "b"), **sp), "last", os.path.join(root, "b.pt"))
    assert meta["dev_eer"]["pooled"] is not None
    assert load_checkpoint(os.path.join(root, "b.pt")).config.decoder.num_classes == 0


def test_loader_workers_draw_different_crops():
    """Each loader worker starts from a copy of the dataset's RNG; _seed_worker must make their draws differ."""
    from speaker_core.data import TrainDataset, collate_train
    from speaker_core.train import _seed_worker

    class OneClip:
        def __len__(self):
            return 1

        def get_int16(self, i):
            return (np.arange(16000 * 5) % 30000).astype(np.int16)   # distinct values, so crops differ

    rows = [{"audio_filepath": "x.wav", "label": "a", "corpus": "c"}]
    ds = TrainDataset(rows, OneClip(), seed=0)
    batches = [[(0, 8000)] for _ in range(4)]

    def first_samples(init):
        dl = torch.utils.data.DataLoader(ds, batch_sampler=batches, collate_fn=collate_train, num_workers=2,
                                         worker_init_fn=init)
        return [float(w[0, 0]) for w, *_ in dl]

    torch.manual_seed(0)
    same = first_samples(None)
    assert same[0] == same[1]  # the failure mode: workers 0 and 1 replay one random stream
    torch.manual_seed(0)
    seeded = first_samples(_seed_worker)
    assert seeded[0] != seeded[1]
    torch.manual_seed(0)
    assert first_samples(_seed_worker) == seeded  # and still reproducible


def test_batch_augmentation_mode_trains(tmp_path, monkeypatch):
    """augment.mode=batch: the loader only crops, the chain runs on the batch on the training device."""
    from speaker_core import augment
    calls = []
    real = augment.BatchAugmenter.__call__
    monkeypatch.setattr(augment.BatchAugmenter, "__call__", lambda self, w, g: calls.append(w.shape) or real(self, w, g))
    monkeypatch.setattr(augment.Augmenter, "__call__", lambda *a: pytest.fail("per-clip chain used in batch mode"))
    root = str(tmp_path)
    _make_pool(root)
    res = train(_cfg(root, os.path.join(root, "b"), epochs=1, **{"teacher.weight": 0.0, "augment.mode": "batch",
                                                               "augment.p_noise": 1.0}))
    h = res["history"][0]
    assert h["steps"] == 2 and np.isfinite(h["train_loss"]) and len(calls) == 2 and calls[0][0] == 4


def test_training_never_writes_a_shipped_checkpoint_by_default():
    """Session 6: two runs started without export= overwrote checkpoints/ecapa-small.pt through the config's
    default. Now a run exports into its own folder unless told otherwise."""
    from speaker_core.train import export_path
    for name in ("ecapa-small", "speakernet-m", "ecapa-m"):
        cfg = load_config(f"configs/{name}.yaml", ["out=runs/x"])
        assert export_path(cfg) == os.path.join("runs/x", "export.pt")
    assert export_path(load_config("configs/ecapa-small.yaml", ["out=runs/x", "export=elsewhere.pt"])) == "elsewhere.pt"


class _Evil:
    def __reduce__(self):
        import os
        return (os.mkdir, (self.target,))


def test_run_state_never_executes_pickled_code(tmp_path):
    import pickle

    import pytest
    import torch

    from speaker_core.train import load_run_state
    evil = _Evil()
    evil.target = str(tmp_path / "pwned")
    torch.save({"epoch": 3, "payload": evil}, tmp_path / "last.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_run_state(str(tmp_path / "last.pt"))
    assert not (tmp_path / "pwned").exists()


def test_consistency_loss_moves_only_the_padded_embedding():
    from speaker_core.train import consistency_loss
    a = torch.randn(3, 8, requires_grad=True)
    b = torch.randn(3, 8, requires_grad=True)
    loss = consistency_loss(a, b)
    loss.backward()
    assert a.grad is None and b.grad.abs().sum() > 0
    assert torch.allclose(loss, 1 - torch.nn.functional.cosine_similarity(a, b).mean())
    assert float(consistency_loss(a.detach(), 2 * a.detach())) < 1e-6


def test_silence_consistency_trains_on_a_padded_half_of_the_batch(tmp_path, monkeypatch):
    """consistency.weight embeds half of each batch again between quiet edges, in the same forward."""
    import speaker_core.train as T
    seen = []
    real = T.TrainWrapper.forward

    def spy(self, wave, lengths, wave2=None, lengths2=None):
        out = real(self, wave, lengths, wave2, lengths2)
        seen.append((wave.shape, None if wave2 is None else wave2.shape, lengths2, out[3], out[4]))
        return out
    monkeypatch.setattr(T.TrainWrapper, "forward", spy)
    root = str(tmp_path)
    _make_pool(root)
    res = train(_cfg(root, os.path.join(root, "c"), epochs=1, **{"teacher.weight": 0.0, "consistency.weight": 1.0,
                                                               "consistency.fraction": 0.5,
                                                               "consistency.pad": "[0.25,0.5]"}))
    assert len(seen) == 2
    for shape, shape2, lengths2, emb2, ref2 in seen:
        n = shape[1]
        assert shape2[0] == 2 and n + 8000 <= shape2[1] <= n + 16000          # half the batch, 0.25-0.5 s each side
        assert (lengths2 == shape2[1]).all()
        assert emb2.requires_grad and not ref2.requires_grad and ref2.shape == emb2.shape
    h = res["history"][0]
    assert np.isfinite(h["consistency_loss"]) and 0 < h["consistency_loss"] <= 2
    off = train(_cfg(root, os.path.join(root, "o"), epochs=1, **{"teacher.weight": 0.0}))
    assert off["history"][0]["consistency_loss"] is None and seen[-1][1] is None


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_consistency_in_eval_mode_embeds_as_inference_does(mode):
    """mode=eval: the padded copies and their reference go through the model as at inference (BatchNorm running
    statistics, which they leave untouched; no SpecAugment); mode=train: the session-9 GPU behaviour."""
    import copy
    from speaker_core.model import SpeakerModel, preset
    from speaker_core.train import TrainWrapper
    torch.manual_seed(0)
    model = SpeakerModel(preset("ecapa-small", num_classes=4))
    start = copy.deepcopy(model.state_dict())
    w = TrainWrapper(model, None, consistency_mode=mode).train()
    x, x2 = torch.randn(4, 8000) * 0.1, torch.randn(2, 12000) * 0.1
    lens, lens2 = torch.full((4,), 8000), torch.full((2,), 12000)
    running = lambda: torch.cat([b.running_mean for b in model.modules() if isinstance(b, torch.nn.BatchNorm1d)])
    torch.manual_seed(1)                                      # the same SpecAugment masks and dither both times
    w(x, lens)
    plain = running().clone()
    model.load_state_dict(start)
    torch.manual_seed(1)
    emb, logits, proj, emb2, ref2 = w(x, lens, x2, lens2)
    assert model.training and emb2.requires_grad and not ref2.requires_grad
    if mode == "eval":
        assert torch.equal(running(), plain)                 # the padded copies left the statistics alone
        model.eval()
        with torch.no_grad():
            assert torch.allclose(emb2, model(x2, lens2), atol=1e-5)
            assert torch.allclose(ref2, model(x[:2], lens[:2]), atol=1e-5)
    else:
        assert not torch.equal(running(), plain)
    with pytest.raises(ValueError):
        TrainWrapper(model, None, consistency_mode="sometimes")


def test_export_from_a_run_that_does_not_exist_says_so(tmp_path, capsys):
    from speaker_core.train import main_train
    rc = main_train(["configs/ecapa-small.yaml", "--set", f"out={tmp_path}/nothing", "--export-from", "last"])
    assert rc == 2
    assert "does not exist: train first" in capsys.readouterr().err


def test_trains_with_a_window_teacher_table(tmp_path):
    """teacher.path may name a per-window table (.npz, tools/prepare_teacher.py --crops): training distils each
    crop towards its nearest window, and a table made for another manifest is refused."""
    from speaker_core.teacher import window_starts
    root = str(tmp_path)
    tr, _ = _make_pool(root)
    counts = np.array([len(window_starts(int(r["duration"] * 16000), 8000, 4000)) for r in tr])
    emb = np.random.RandomState(2).randn(int(counts.sum()), 8).astype(np.float32)
    np.savez(os.path.join(root, "win.npz"), emb=emb, count=counts, hop=4000, win=8000)
    res = train(_cfg(root, os.path.join(root, "w"), epochs=1, **{"teacher.path": f"{root}/win.npz"}))
    kd = res["history"][0]["kd_loss"]
    assert kd is not None and 0.0 < kd < 2.0
    np.savez(os.path.join(root, "bad.npz"), emb=emb[:3], count=np.ones(3, dtype=np.int64), hop=4000, win=8000)
    with pytest.raises(ValueError, match="rerun tools/prepare_teacher.py"):
        train(_cfg(root, os.path.join(root, "x"), epochs=1, **{"teacher.path": f"{root}/bad.npz"}))


def test_data_edges_setting():
    from speaker_core.audio import CANONICAL_EDGES
    from speaker_core.train import edges_setting
    assert edges_setting("canonical") == CANONICAL_EDGES and edges_setting(None) is None
    assert edges_setting({"keep": 0.1, "pad": 1.0}) == {"keep": 0.1, "pad": 1.0}
    for bad in ("words", {"keep": 0.1, "silence": 2}, 3):
        with pytest.raises(ValueError, match="data.edges"):
            edges_setting(bad)
