import math

import numpy as np
import pytest
import torch

from speaker_core.augment import (Augmenter, add_noise, babble_noise, colored_noise, gain, reverb,
                                  speed_perturb, synthetic_rir, telephone)

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
