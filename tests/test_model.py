import pytest
import torch

from speaker_core.decoder import AngularMarginLoss
from speaker_core.model import PRESETS, SpeakerModel, config_from_dict, config_to_dict, preset

# Parameter counts with a 50-way classifier, measured on NeMo 3.0.0's own models (nemo-reference.md, section 7).
NEMO_PARAMS = {"speakernet-m": 1.81e6, "speakernet-l": 5.07e6, "ecapa-tdnn": 20.93e6, "titanet-s": 6.83e6,
               "titanet-l": 22.13e6}


@pytest.mark.parametrize("name", sorted(NEMO_PARAMS))
def test_parameter_counts_match_nemo(name):
    n = sum(p.numel() for p in SpeakerModel(preset(name, num_classes=50)).parameters())
    assert abs(n - NEMO_PARAMS[name]) < 0.006e6


def small(name):
    cfg = preset(name, num_classes=7)
    if name.startswith("ecapa") or name.startswith("titanet"):
        # shrink widths for a fast test; the structure (and so the masking logic) is unchanged
        if hasattr(cfg.encoder, "filters"):
            cfg.encoder.filters = [32, 32, 32, 32, 96]
            cfg.decoder.feat_in = 96
        else:
            for b in cfg.encoder.blocks:
                b.filters = 32 if b.filters < 1000 else 96
            cfg.encoder.se_reduction_ratio = 8
            cfg.decoder.feat_in = 96
        cfg.decoder.attention_channels = 16
    return cfg


def randomize_bn(model, seed=0):
    """Calibrate BatchNorm statistics on random input so embeddings depend on the input (random init barely does)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None
    model.config.spec_augment = None
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    with torch.no_grad():
        x = torch.randn(6, 24000, generator=g) * torch.rand(6, 1, generator=g)
        x = x * torch.sin(torch.arange(24000) / (20 + 60 * torch.rand(6, 1, generator=g)))
        model(x, torch.tensor([24000, 20000, 16000, 24000, 12000, 18000]))
    model.eval()


@pytest.mark.parametrize("name", ["speakernet-m", "ecapa-small", "titanet-s"])
def test_batch_equals_one_at_a_time(name, device, rel_tol):
    torch.manual_seed(0)
    model = SpeakerModel(small(name))
    randomize_bn(model)
    model = model.to(device).eval()
    lengths = [16000, 23456, 8000, 40000]
    waves = [torch.randn(n) * 0.1 for n in lengths]
    batch = torch.zeros(4, max(lengths))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    with torch.inference_mode():
        eb = model(batch.to(device), torch.tensor(lengths, device=device))
        singles = torch.cat([model(w[None].to(device), torch.tensor([len(w)], device=device)) for w in waves])
    spread = (singles.max(0).values - singles.min(0).values).max()
    assert spread > 1e-2  # embeddings must depend on the input, or the comparison means nothing
    assert (eb - singles).abs().max() <= rel_tol * spread


def test_padding_content_does_not_leak(device):
    """Garbage after an utterance's end must not change its embedding."""
    model = SpeakerModel(small("ecapa-small"))
    randomize_bn(model, 1)
    model = model.to(device).eval()
    x = torch.randn(1, 30000) * 0.1
    y = torch.cat([x, torch.randn(1, 9000)], 1)
    n = torch.tensor([30000], device=device)
    with torch.inference_mode():
        assert torch.allclose(model(x.to(device), n), model(y.to(device), n), atol=1e-5)


@pytest.mark.parametrize("piece", [5, 31, 100, 301])
def test_long_clip_in_pieces_equals_one_pass(piece, device, rel_tol):
    """SpeakerNet's encoder sees `radius` frames each side (no SE), so pieces with that much context and summed
    statistics give the one-pass embedding, also for pieces shorter than the radius or not dividing the clip."""
    torch.manual_seed(0)
    model = SpeakerModel(small("speakernet-m"))
    randomize_bn(model)
    model = model.to(device).eval()
    assert model.pieceable and model.encoder.radius == 1 + 2 * (3 + 5 + 7)
    x = (torch.randn(1, 48000) * torch.sin(torch.arange(48000) / 300.0) * 0.1).to(device)
    with torch.inference_mode():
        whole = model(x, torch.tensor([48000], device=device))
        pieces = model.embed_in_pieces(x, piece)
        other = model(x.flip(1), torch.tensor([48000], device=device))
    assert (whole - other).abs().max() > 1e-2   # the comparison means something
    assert (whole - pieces).abs().max() <= rel_tol * whole.abs().max()


def test_jasper_radius_is_its_receptive_field():
    """A change at frame p moves encoder outputs p - radius .. p + radius and nothing further out."""
    torch.manual_seed(0)
    model = SpeakerModel(small("speakernet-m"))
    randomize_bn(model)
    enc, r, T, p = model.encoder.eval(), model.encoder.radius, 200, 100
    x = torch.randn(1, 64, T)
    y = x.clone()
    y[0, :, p] += 5.0
    with torch.inference_mode():
        diff = (enc(x, torch.tensor([T]))[0] - enc(y, torch.tensor([T]))[0]).abs().amax(dim=1)[0]   # (T,)
    assert diff[p - r] > 1e-4 and diff[p + r] > 1e-4
    assert diff[: p - r].max() < 1e-6 and diff[p + r + 1 :].max() < 1e-6


@pytest.mark.parametrize("name", ["ecapa-small", "titanet-s"])
def test_models_with_global_context_refuse_pieces(name):
    model = SpeakerModel(small(name)).eval()
    assert not model.pieceable
    with pytest.raises(ValueError, match="pieceable"):
        model.embed_in_pieces(torch.zeros(1, 16000), 50)


def test_config_roundtrip_and_overrides():
    for name in PRESETS:
        cfg = preset(name, num_classes=3)
        assert config_from_dict(config_to_dict(cfg)) == cfg
    cfg = preset("speakernet-m", emb_sizes=[128])
    assert SpeakerModel(cfg).emb_dim == 128
    with pytest.raises(KeyError):
        preset("nope")


def test_embedding_is_pre_relu_for_xvector():
    model = SpeakerModel(preset("speakernet-m", num_classes=3)).eval()
    with torch.inference_mode():
        e = model(torch.randn(2, 16000) * 0.1, torch.tensor([16000, 16000]))
    assert (e < 0).any()  # a post-ReLU embedding could not be negative


def test_angular_loss_and_training_step():
    torch.manual_seed(0)
    model = SpeakerModel(small("speakernet-m"))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = AngularMarginLoss(30, 0.2)
    x, n, y = torch.randn(4, 16000) * 0.1, torch.full((4,), 16000), torch.tensor([0, 1, 2, 3])
    model.train()
    loss = loss_fn(model.logits(model(x, n)), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and loss > 0
    # The margin makes the loss larger than plain scaled-cosine cross-entropy.
    logits = torch.tensor([[0.5, 0.1, -0.2]])
    plain = torch.nn.functional.cross_entropy(30 * logits, torch.tensor([0]))
    assert loss_fn(logits, torch.tensor([0])) > plain


def test_inter_topk_penalty_adds_margin_to_the_nearest_wrong_classes_only():
    logits = torch.tensor([[0.5, 0.4, 0.1, -0.3], [0.2, -0.1, 0.6, 0.3]], requires_grad=True)
    y = torch.tensor([0, 2])
    plain = AngularMarginLoss(30, 0.2)(logits, y)
    pen = AngularMarginLoss(30, 0.2, topk=2, topk_margin=0.1)
    # By hand: the two highest wrong classes of each row get +0.1 before scaling.
    target = torch.cos(torch.acos(logits.detach().gather(1, y[:, None])) + 0.2) * 30
    z = 30 * (logits.detach() + torch.tensor([[0, 0.1, 0.1, 0], [0.1, 0, 0, 0.1]]))
    z = z.scatter(1, y[:, None], target)
    assert torch.allclose(pen(logits, y), torch.nn.functional.cross_entropy(z, y))
    assert pen(logits, y) > plain
    # k larger than the wrong classes: all of them, no error; no penalty by default (NeMo's loss).
    assert torch.isfinite(AngularMarginLoss(30, 0.2, topk=10, topk_margin=0.1)(logits, y))
    assert torch.equal(AngularMarginLoss(30, 0.2, topk=5)(logits, y), plain)
