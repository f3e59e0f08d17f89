import math

import numpy as np
import pytest
import torch

from speaker_core.augment import (Augmenter, BatchAugmenter, add_noise, babble_noise, colored_noise, gain,
                                  peaking_gain, quiet_edges, quiet_pad, random_eq, reverb, speed_perturb,
                                  synthetic_rir, telephone)

N = 16000 * 2


def _speech_like(seed=0):
    rng = np.random.RandomState(seed)
    t = np.arange(N) / 16000
    x = 0.3 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.randn(N)
    return torch.from_numpy(x.astype(np.float32))


def _snr(clean, noisy):
    n = noisy - clean
    return 10 * math.log10(float(clean.pow(2).mean()) / float(n.pow(2).mean()))


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble"])
@pytest.mark.parametrize("snr", [0.0, 7.5, 15.0])
def test_noise_hits_snr(kind, snr):
    rng = np.random.RandomState(1)
    x = _speech_like()
    if kind == "babble":
        src = [_speech_like(s).numpy()[: 8000 + 3000 * s] for s in range(1, 7)]
        noise = babble_noise(N, rng, lambda r: src[r.randint(len(src))])
    else:
        noise = colored_noise(N, rng, {"white": 0, "pink": 1, "brown": 2}[kind])
    y = add_noise(x, noise, snr)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert abs(_snr(x, y) - snr) < 0.5


def test_transforms_keep_shape_and_finite():
    rng = np.random.RandomState(0)
    x = _speech_like()
    outs = [speed_perturb(x, 0.95, rng), speed_perturb(x, 1.05, rng), gain(x, -6.0),
            telephone(x, "bandpass"), telephone(x, "8k"), reverb(x, synthetic_rir(rng, 0.5))]
    for y in outs:
        assert y.shape == x.shape and torch.isfinite(y).all()
    assert abs(float(gain(x, 6.0).abs().max() / x.abs().max()) - 10 ** 0.3) < 1e-4
    # band-limiting removes energy above 4 kHz
    w = colored_noise(N, rng, 0.0)
    spec = torch.fft.rfft(telephone(w, "bandpass")).abs()
    f = torch.fft.rfftfreq(N, 1 / 16000)
    assert spec[f > 5000].mean() < 0.1 * spec[(f > 800) & (f < 3000)].mean()


def test_augmenter_seeded():
    src = [_speech_like(s).numpy() for s in range(5)]
    aug = Augmenter(p_noise=1.0, p_speed=1.0, p_gain=1.0, p_telephone=1.0, p_reverb=1.0,
                    babble_source=lambda r: src[r.randint(len(src))])
    x = _speech_like()
    a = aug(x, np.random.RandomState(3))
    b = aug(x, np.random.RandomState(3))
    c = aug(x, np.random.RandomState(4))
    assert a.shape == x.shape and torch.isfinite(a).all() and a.abs().max() <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_peaking_gain_is_the_gain_at_the_centre_and_flat_far_away():
    f = np.array([20.0, 500.0, 2000.0, 7990.0])
    db = 20 * np.log10(peaking_gain(f, 500.0, -9.0, 2.0))
    assert abs(db[1] + 9.0) < 1e-6 and abs(db[0]) < 0.1 and abs(db[2]) < 0.6 and abs(db[3]) < 0.05


def test_random_eq_colours_the_spectrum_and_keeps_the_level():
    w = colored_noise(N, np.random.RandomState(0), 0.0)
    y = random_eq(w, np.random.RandomState(5), bands=(2, 2), gain_db=(12.0, 12.0))
    assert y.shape == w.shape and torch.isfinite(y).all()
    assert abs(float(y.pow(2).mean().sqrt() / w.pow(2).mean().sqrt()) - 1.0) < 1e-4
    # two +12 dB peaks with the level kept: some band rises and some falls by several dB
    edges = np.geomspace(100, 7000, 9)
    f = torch.fft.rfftfreq(N, 1 / 16000).numpy()
    band = lambda x: np.array([float(torch.fft.rfft(x).abs().pow(2).numpy()[(f >= lo) & (f < hi)].mean())
                               for lo, hi in zip(edges[:-1], edges[1:])])
    change = 10 * np.log10(band(y) / band(w))
    assert change.max() > 3.0 and change.min() < -1.0 and change.max() - change.min() > 6.0
    # seeded, and a 0 dB cascade is the identity
    assert torch.equal(y, random_eq(w, np.random.RandomState(5), bands=(2, 2), gain_db=(12.0, 12.0)))
    assert torch.allclose(random_eq(w, np.random.RandomState(1), gain_db=(0.0, 0.0)), w, atol=1e-5)


def test_augmenter_eq_only_when_asked():
    x = _speech_like()
    off = Augmenter(p_noise=0.0, p_speed=0.0, p_gain=0.0, p_telephone=0.0, p_reverb=0.0)
    on = Augmenter(p_noise=0.0, p_speed=0.0, p_gain=0.0, p_telephone=0.0, p_reverb=0.0, p_eq=1.0)
    assert torch.equal(off(x, np.random.RandomState(0)), x)
    y = on(x, np.random.RandomState(0))
    assert y.shape == x.shape and not torch.allclose(y, x, atol=1e-3)
    with pytest.raises(ValueError, match="per-clip"):
        BatchAugmenter.from_config({"mode": "batch", "p_eq": 0.5})


def _batch(device, b=6):
    return torch.stack([_speech_like(s) * (0.5 + 0.1 * s) for s in range(b)]).to(device)


def _only(**p):
    base = dict(p_noise=0.0, p_speed=0.0, p_gain=0.0, p_telephone=0.0, p_reverb=0.0)
    base.update(p)
    return BatchAugmenter(**base)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble"])
def test_batch_noise_hits_snr_per_row(kind, device):
    x = _batch(device)
    y = _only(p_noise=1.0, snr_db=(7.5, 7.5), noise_kinds=(kind,))(x, torch.Generator(device).manual_seed(0))
    for i in range(len(x)):
        assert abs(_snr(x[i].cpu(), y[i].cpu()) - 7.5) < 0.5


def test_batch_transforms_keep_shape_finite_and_level(device):
    x = _batch(device)
    g = lambda: torch.Generator(device).manual_seed(3)
    for aug in (_only(p_speed=1.0), _only(p_reverb=1.0), _only(p_telephone=1.0), _only(p_gain=1.0),
                BatchAugmenter(p_noise=1, p_speed=1, p_gain=1, p_telephone=1, p_reverb=1)):
        y = aug(x, g())
        assert y.shape == x.shape and y.device == x.device and torch.isfinite(y).all()
        assert float(y.abs().max()) <= 1.0 + 1e-6
    rms = lambda z: z.pow(2).mean(-1).sqrt()
    assert torch.allclose(rms(_only(p_reverb=1.0)(x, g())), rms(x), rtol=1e-3)   # reverb keeps the level
    ratio = rms(_only(p_gain=1.0, gain_db=(-6.0, 6.0))(x, g())) / rms(x)
    assert bool(((ratio > 10 ** (-6 / 20) - 1e-4) & (ratio < 10 ** (6 / 20) + 1e-4)).all())
    w = torch.randn(4, N, generator=torch.Generator().manual_seed(0)).to(device) * 0.1
    spec = torch.fft.rfft(_only(p_telephone=1.0)(w, g())).abs().cpu()
    f = torch.fft.rfftfreq(N, 1 / 16000)
    band = float(spec[:, (f > 500) & (f < 3000)].pow(2).mean())
    assert float(spec[:, f > 5000].pow(2).mean()) < 0.01 * band
    assert float(spec[:, (f > 20) & (f < 120)].pow(2).mean()) < 0.01 * band
    assert 0.8 < float(spec[:, (f > 800) & (f < 2000)].pow(2).mean()) / float(
        torch.fft.rfft(w).abs().cpu()[:, (f > 800) & (f < 2000)].pow(2).mean()) < 1.2     # pass band untouched


def test_batch_augmenter_is_seeded(device):
    x = _batch(device)
    aug = BatchAugmenter(p_noise=1, p_speed=0.5, p_gain=1, p_telephone=0.5, p_reverb=0.5)
    a = aug(x, torch.Generator(device).manual_seed(1))
    assert torch.equal(a, aug(x, torch.Generator(device).manual_seed(1)))
    assert not torch.equal(a, aug(x, torch.Generator(device).manual_seed(2)))
    assert BatchAugmenter.from_config({"p_noise": 0.5}) is None            # default mode is per clip
    assert isinstance(BatchAugmenter.from_config({"mode": "batch"}), BatchAugmenter)
    assert Augmenter.from_config({"mode": "clip"}) is not None


def test_batch_telephone_matches_the_biquad_chain_in_magnitude():
    import torchaudio.functional as AF
    w = torch.randn(8, N, generator=torch.Generator().manual_seed(1)) * 0.1
    ref = w
    for _ in range(2):
        ref = AF.lowpass_biquad(AF.highpass_biquad(ref, 16000, 300.0), 16000, 3400.0)
    ours = BatchAugmenter.telephone(w)
    f = torch.fft.rfftfreq(N, 1 / 16000)
    power = lambda z, lo, hi: float(torch.fft.rfft(z).abs()[:, (f > lo) & (f < hi)].pow(2).mean())
    for lo, hi in [(100, 250), (250, 500), (500, 1000), (1000, 3000), (3000, 4000), (4000, 6000)]:
        assert abs(power(ours, lo, hi) / power(ref, lo, hi) - 1.0) < 0.1, (lo, hi)


def test_quiet_edges_put_a_piece_of_the_speech_between_quiet_noise():
    x = 0.5 + 0.5 * torch.arange(N, dtype=torch.float32) / N      # every sample distinct and >= 0.5
    seen_lead = seen_tail = 0
    for seed in range(20):
        y = quiet_edges(x, np.random.RandomState(seed), edge_max=0.35, edge_db=(-60.0, -60.0))
        assert y.shape == x.shape
        inside = torch.nonzero(y >= 0.1).squeeze(1)                 # the -60 dBFS noise stays far below 0.1
        a, b = int(inside[0]), int(inside[-1]) + 1
        piece = y[a:b]
        k = int(torch.searchsorted(x, piece[0]))
        assert torch.equal(piece, x[k:k + len(piece)])             # one contiguous piece of the input
        assert 0.3 * N - 2 <= len(piece) <= N and len(inside) == len(piece)
        edges = torch.cat([y[:a], y[b:]])
        if len(edges) > 100:
            db = 20 * math.log10(float(edges.pow(2).mean().sqrt()))
            assert -61.5 < db < -58.5                               # at the requested level
        seen_lead += a > 0
        seen_tail += b < N
    assert seen_lead > 10 and seen_tail > 10


def test_augmenter_quiet_edges_only_when_asked():
    x = _speech_like()
    plain = Augmenter(p_noise=0, p_speed=0, p_gain=0, p_telephone=0, p_reverb=0)
    assert torch.equal(plain(x, np.random.RandomState(0)), x)
    edged = Augmenter(p_noise=0, p_speed=0, p_gain=0, p_telephone=0, p_reverb=0, p_edges=1.0)
    y = edged(x, np.random.RandomState(0))
    assert y.shape == x.shape and not torch.equal(y, x)


def test_batch_quiet_edges_match_the_clip_version_in_kind():
    x = (0.5 + 0.5 * torch.arange(N, dtype=torch.float32) / N).repeat(8, 1)             # (8, N), all >= 0.5
    aug = BatchAugmenter(p_noise=0, p_speed=0, p_gain=0, p_telephone=0, p_reverb=0, p_edges=0.5,
                         edge_db=(-60.0, -60.0))
    y = aug(x, torch.Generator().manual_seed(0))
    changed = 0
    for row in y:
        inside = torch.nonzero(row >= 0.1).squeeze(1)
        a, b = int(inside[0]), int(inside[-1]) + 1
        k = int(torch.searchsorted(x[0], row[a]))
        assert torch.equal(row[a:b], x[0, k:k + b - a]) and len(inside) == b - a >= 0.3 * N - 2
        changed += (b - a) < N
        if b - a < N - 100:
            quiet = torch.cat([row[:a], row[b:]])
            # about the level: the noise is unit-RMS over the whole row, and brown noise wanders
            assert -64.0 < 20 * math.log10(float(quiet.pow(2).mean().sqrt())) < -56.0
    assert 1 <= changed <= 7


def test_quiet_pad_keeps_every_row_whole_between_quiet_edges(device):
    x = _batch(device)                                                                  # (B, N)
    lead, tail = 8000, 12000
    y = quiet_pad(x, lead, tail, torch.Generator(device).manual_seed(0), edge_db=(-60.0, -60.0), p_zeros=0.0)
    assert y.shape == (x.shape[0], lead + x.shape[1] + tail)
    assert torch.equal(y[:, lead:lead + x.shape[1]], x)                                 # the speech untouched
    for row in y.cpu():
        quiet = torch.cat([row[:lead], row[-tail:]])
        assert -64.0 < 20 * math.log10(float(quiet.pow(2).mean().sqrt())) < -56.0
    z = quiet_pad(x, lead, tail, torch.Generator(device).manual_seed(0), p_zeros=1.0)
    assert torch.count_nonzero(z[:, :lead]) == 0 and torch.count_nonzero(z[:, -tail:]) == 0
    assert torch.equal(quiet_pad(x, 0, 0, torch.Generator(device)), x)
