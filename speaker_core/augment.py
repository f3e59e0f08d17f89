"""Waveform augmentation on 1-D float tensors (16 kHz), seeded by a ``numpy.random.RandomState``.

Every transform keeps the shape (number of samples) and returns finite values. They are cheap enough to
run in the training loop on 2 CPU cores (FFT convolutions and small-ratio polyphase resampling only).

Why augment at all: in the pool every speaker comes from a single recording session, so channel and
speaker are confounded. Noise, reverberation, band-limiting and gain changes make the channel vary
within a speaker, so the model has to rely on the voice.

Speed perturbation (+-5 %) keeps the speaker label. Kaldi/NeMo recipes sometimes treat a speed-perturbed copy
as a new speaker (it shifts pitch and formants by the same factor), but those recipes have many
sessions per speaker. Here each speaker has one session, and +-5 % is well inside the natural
pitch/rate variation of one person across days; calling it a new identity would double the classes with
near-duplicate voices and teach the model that a 5 % shift is an identity change, which is the opposite
of the invariance we want for verification across sessions. Larger shifts (0.9 and 1.1, 10 % each way) can
instead make new speakers out of old ones ("speaker augmentation", ``TrainDataset(speaker_speeds=...)``):
that was tried in session 15, see the model card.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
import torch

SR = 16000


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean().clamp_min(1e-12).sqrt()


# --------------------------------------------------------------------------------------------
# noise generators
# --------------------------------------------------------------------------------------------
def colored_noise(n: int, rng: np.random.RandomState, exponent: float = 0.0) -> torch.Tensor:
    """Gaussian noise with a 1/f**exponent power spectrum: 0 white, 1 pink, 2 brown. Unit RMS."""
    white = rng.standard_normal(n).astype(np.float32)
    if exponent == 0.0:
        x = torch.from_numpy(white)
    else:
        nfft = 1 << max(n - 1, 1).bit_length()  # power-of-two FFT: fast for any clip length
        white = np.concatenate([white, rng.standard_normal(nfft - n).astype(np.float32)])
        spec = torch.fft.rfft(torch.from_numpy(white))
        f = torch.arange(spec.shape[0], dtype=torch.float32)
        f[0] = 1.0
        spec = spec / f.pow(exponent / 2.0)
        spec[0] = 0.0
        x = torch.fft.irfft(spec, n=nfft)[:n]
    return x / _rms(x)


def babble_noise(n: int, rng: np.random.RandomState, sources: Callable[[np.random.RandomState], np.ndarray],
                 k_min: int = 3, k_max: int = 6) -> torch.Tensor:
    """Babble: the sum of 3-6 other utterances (random crops, tiled when short), each at unit RMS. Unit RMS."""
    k = rng.randint(k_min, k_max + 1)
    acc = torch.zeros(n)
    for _ in range(k):
        x = np.asarray(sources(rng), dtype=np.float32)
        if len(x) == 0:
            continue
        if len(x) < n:
            x = np.tile(x, -(-n // len(x)))
        s = rng.randint(0, len(x) - n + 1)
        t = torch.from_numpy(np.ascontiguousarray(x[s:s + n]))
        acc += t / _rms(t)
    if float(_rms(acc)) < 1e-6:
        return colored_noise(n, rng, 1.0)
    return acc / _rms(acc)


def add_noise(wave: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """wave + noise scaled so that 10*log10(P_wave / P_noise) == snr_db (powers over the whole clip)."""
    noise = noise[: wave.shape[-1]]
    p_s = wave.pow(2).mean()
    p_n = noise.pow(2).mean().clamp_min(1e-20)
    if float(p_s) <= 0.0:
        return wave.clone()
    scale = torch.sqrt(p_s / (p_n * 10.0 ** (snr_db / 10.0)))
    return wave + scale * noise


# --------------------------------------------------------------------------------------------
# other transforms
# --------------------------------------------------------------------------------------------
def fit_length(x: torch.Tensor, n: int, rng: Optional[np.random.RandomState] = None) -> torch.Tensor:
    """Crop (random or centre) or tile ``x`` to ``n`` samples."""
    m = x.shape[-1]
    if m == n:
        return x
    if m > n:
        s = rng.randint(0, m - n + 1) if rng is not None else (m - n) // 2
        return x[s:s + n]
    reps = -(-n // m)
    return x.repeat(reps)[:n]


def resample_speed(wave: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``factor`` times faster (pitch and tempo together, like sox ``speed``): N samples -> about N / factor.
    The factor is quantised to 1/100 so the polyphase filter stays small.

    >>> resample_speed(torch.zeros(1100), 1.1).shape
    torch.Size([1000])
    """
    import torchaudio.functional as AF
    num = int(round(factor * 100))
    if num == 100:
        return wave
    return AF.resample(wave.unsqueeze(0), orig_freq=num, new_freq=100).squeeze(0)


def speed_perturb(wave: torch.Tensor, factor: float, rng: Optional[np.random.RandomState] = None) -> torch.Tensor:
    """``resample_speed``, then fit to the original length."""
    return fit_length(resample_speed(wave, factor), wave.shape[-1], rng)


def quiet_edges(wave: torch.Tensor, rng: np.random.RandomState, edge_max: float = 0.35,
                edge_db: Sequence[float] = (-75.0, -40.0)) -> torch.Tensor:
    """The same length, with a random part of the speech between a quiet lead and tail (each up to
    ``edge_max`` of the length) of coloured noise at ``edge_db`` dBFS: a recording's silence around the words.

    >>> x = quiet_edges(torch.ones(1000), np.random.RandomState(0))
    >>> x.shape, bool((x == 1).any()), bool(x.abs().max() <= 1)
    (torch.Size([1000]), True, True)
    """
    n = wave.shape[-1]
    lead, tail = (int(rng.uniform(0.0, edge_max) * n) for _ in range(2))
    keep = n - lead - tail
    if lead + tail == 0 or keep <= 0:
        return wave
    start = rng.randint(0, n - keep + 1)
    quiet = colored_noise(lead + tail, rng, float(rng.choice([0.0, 1.0, 2.0]))) * 10 ** (rng.uniform(*edge_db) / 20)
    return torch.cat([quiet[:lead], wave[start:start + keep], quiet[lead:]])


def gain(wave: torch.Tensor, db: float) -> torch.Tensor:
    return wave * (10.0 ** (db / 20.0))


def telephone(wave: torch.Tensor, mode: str = "bandpass") -> torch.Tensor:
    """Telephone channel: ``bandpass`` (300-3400 Hz biquads) or ``8k`` (down to 8 kHz and back)."""
    import torchaudio.functional as AF
    if mode == "8k":
        y = AF.resample(AF.resample(wave.unsqueeze(0), SR, 8000), 8000, SR).squeeze(0)
        return fit_length(y, wave.shape[-1])
    y = AF.highpass_biquad(wave.unsqueeze(0), SR, 300.0)
    y = AF.lowpass_biquad(y, SR, 3400.0)
    y = AF.highpass_biquad(y, SR, 300.0)
    y = AF.lowpass_biquad(y, SR, 3400.0)
    return y.squeeze(0)


def peaking_gain(freqs_hz: np.ndarray, f0: float, gain_db: float, q: float, sr: int = SR) -> np.ndarray:
    """Magnitude response (linear) at ``freqs_hz`` of one peaking-EQ biquad (RBJ cookbook): ``gain_db`` at ``f0``,
    0 dB far from it, bandwidth set by ``q``.

    >>> g = peaking_gain(np.array([50.0, 1000.0, 7900.0]), 1000.0, 6.0, 1.0)
    >>> [round(float(20 * np.log10(x)), 1) for x in g]
    [0.0, 6.0, 0.0]
    """
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * f0 / sr
    alpha = math.sin(w0) / (2.0 * q)
    c = math.cos(w0)
    z1 = np.exp(-1j * 2.0 * math.pi * np.asarray(freqs_hz, dtype=np.float64) / sr)
    b = (1 + alpha * a) - 2 * c * z1 + (1 - alpha * a) * z1 ** 2
    d = (1 + alpha / a) - 2 * c * z1 + (1 - alpha / a) * z1 ** 2
    return np.abs(b / d)


def random_eq(wave: torch.Tensor, rng: np.random.RandomState, bands: Sequence[int] = (1, 3),
              gain_db: Sequence[float] = (-12.0, 12.0), freq_hz: Sequence[float] = (100.0, 7000.0),
              q: Sequence[float] = (0.5, 3.0)) -> torch.Tensor:
    """A random microphone/room colouring: a cascade of ``bands`` peaking filters, each with a gain, centre
    (log-uniform) and Q drawn from the ranges, applied with zero phase in the frequency domain; the RMS is kept.

    Why: every speaker in the pool was recorded in one session, so a model can use the channel's spectral shape
    as part of the voice; a user enrolls with one device and verifies with another.

    >>> x = random_eq(torch.randn(16000), np.random.RandomState(0))
    >>> x.shape, bool(torch.isfinite(x).all())
    (torch.Size([16000]), True)
    """
    n = wave.shape[-1]
    if n == 0:
        return wave
    nfft = 1 << (2 * n - 1).bit_length()            # zero padding: the response's ringing does not wrap around
    f = np.fft.rfftfreq(nfft, 1.0 / SR)
    mag = np.ones_like(f)
    for _ in range(rng.randint(bands[0], bands[1] + 1)):
        f0 = math.exp(rng.uniform(math.log(freq_hz[0]), math.log(freq_hz[1])))
        qq = math.exp(rng.uniform(math.log(q[0]), math.log(q[1])))
        mag *= peaking_gain(f, f0, rng.uniform(*gain_db), qq)
    y = torch.fft.irfft(torch.fft.rfft(wave, nfft) * torch.from_numpy(mag.astype(np.float32)), nfft)[:n]
    return y * (_rms(wave) / _rms(y))


def synthetic_rir(rng: np.random.RandomState, rt60: float, sr: int = SR, max_len: float = 0.6) -> torch.Tensor:
    """Exponentially decaying Gaussian noise (energy falls 60 dB in ``rt60`` s) after a unit direct path."""
    n = max(8, int(min(rt60, max_len) * sr))
    t = np.arange(n, dtype=np.float32) / sr
    decay = np.exp(-6.9078 * t / max(rt60, 1e-3))  # amplitude: 20*log10(e^-6.9078) = -60 dB at t = rt60
    h = rng.standard_normal(n).astype(np.float32) * decay
    pre = int(0.001 * sr)  # the first millisecond is the direct path only
    h[:pre] = 0.0
    h *= 0.3 / max(np.sqrt((h ** 2).sum()), 1e-8) * rng.uniform(0.5, 2.0)
    h[0] = 1.0
    return torch.from_numpy(h)


def reverb(wave: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Convolve with ``rir`` (FFT), keep the first len(wave) samples and the original RMS."""
    n = wave.shape[-1]
    m = n + rir.shape[-1] - 1
    nfft = 1 << (m - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(wave, nfft) * torch.fft.rfft(rir, nfft), nfft)[:n]
    return y * (_rms(wave) / _rms(y))


# --------------------------------------------------------------------------------------------
# the training-time pipeline
# --------------------------------------------------------------------------------------------
class Augmenter:
    """Random chain: quiet edges -> speed -> reverb -> telephone -> EQ -> noise -> gain, each with its own
    probability (``p_eq``, ``random_eq``, is 0 unless set: it came in rule 57).

    Quiet edges: a recording made in the app has silence before and after the words, which statistics pooling
    averages in (1.5 s of -50 dBFS noise around each dev clip took the session-6 model's mean EER from 9.85 % to
    12.99 %). With ``p_edges`` a crop keeps only part of its speech, between a lead and a tail of up to
    ``edge_max`` of its length each, filled with white, pink or brown noise at ``edge_db`` dBFS.

    ``babble_source(rng) -> np.ndarray`` returns a random other training utterance (float32, 16 kHz); without
    it babble is replaced by pink noise. Call as ``aug(wave, rng)``.
    """

    def __init__(self, p_noise: float = 0.5, snr_db: Sequence[float] = (0.0, 15.0),
                 noise_kinds: Sequence[str] = ("white", "pink", "brown", "babble"),
                 p_speed: float = 0.3, speeds: Sequence[float] = (0.95, 1.05),
                 p_gain: float = 0.5, gain_db: Sequence[float] = (-6.0, 6.0),
                 p_telephone: float = 0.15, p_reverb: float = 0.25, rt60: Sequence[float] = (0.15, 0.8),
                 p_edges: float = 0.0, edge_max: float = 0.35, edge_db: Sequence[float] = (-75.0, -40.0),
                 p_eq: float = 0.0, eq_db: Sequence[float] = (-12.0, 12.0),
                 babble_source: Optional[Callable[[np.random.RandomState], np.ndarray]] = None):
        self.p_edges, self.edge_max, self.edge_db = p_edges, edge_max, tuple(edge_db)
        self.p_eq, self.eq_db = p_eq, tuple(eq_db)
        self.p_noise, self.snr_db, self.noise_kinds = p_noise, tuple(snr_db), tuple(noise_kinds)
        self.p_speed, self.speeds = p_speed, tuple(speeds)
        self.p_gain, self.gain_db = p_gain, tuple(gain_db)
        self.p_telephone, self.p_reverb, self.rt60 = p_telephone, p_reverb, tuple(rt60)
        self.babble_source = babble_source

    @classmethod
    def from_config(cls, cfg: Optional[dict], babble_source=None) -> Optional["Augmenter"]:
        if not cfg or not cfg.get("enabled", True):
            return None
        kw = {k: v for k, v in cfg.items() if k not in ("enabled", "mode")}
        return cls(babble_source=babble_source, **kw)

    def noise(self, n: int, rng: np.random.RandomState) -> torch.Tensor:
        kind = self.noise_kinds[rng.randint(len(self.noise_kinds))]
        if kind == "babble" and self.babble_source is not None:
            return babble_noise(n, rng, self.babble_source)
        exp = {"white": 0.0, "pink": 1.0, "brown": 2.0}.get(kind, 1.0)
        return colored_noise(n, rng, exp)

    def __call__(self, wave: torch.Tensor, rng: np.random.RandomState) -> torch.Tensor:
        x = wave
        n = x.shape[-1]
        if self.p_edges and rng.rand() < self.p_edges:
            x = quiet_edges(x, rng, self.edge_max, self.edge_db)
        if rng.rand() < self.p_speed:
            x = speed_perturb(x, rng.uniform(*self.speeds), rng)
        if rng.rand() < self.p_reverb:
            x = reverb(x, synthetic_rir(rng, rng.uniform(*self.rt60)))
        if rng.rand() < self.p_telephone:
            x = telephone(x, "bandpass" if rng.rand() < 0.5 else "8k")
        if self.p_eq and rng.rand() < self.p_eq:   # no draw when off: older seeded runs stay the same
            x = random_eq(x, rng, gain_db=self.eq_db)
        if rng.rand() < self.p_noise:
            x = add_noise(x, self.noise(n, rng), rng.uniform(*self.snr_db))
        if rng.rand() < self.p_gain:
            x = gain(x, rng.uniform(*self.gain_db))
        peak = float(x.abs().max()) if n else 0.0
        if peak > 1.0:
            x = x / peak
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        return x.contiguous()


# --------------------------------------------------------------------------------------------
# the same chain on a whole batch, on the training device
# --------------------------------------------------------------------------------------------
def quiet_pad(wave: torch.Tensor, lead: int, tail: int, g: torch.Generator,
              edge_db: Sequence[float] = (-75.0, -40.0), p_zeros: float = 0.2) -> torch.Tensor:
    """(B, N) -> (B, lead + N + tail): the whole of each row between a quiet lead and tail, as a recording
    started early and stopped late. Each row gets white, pink or brown noise at a level drawn from
    ``edge_db`` dBFS, or with probability ``p_zeros`` digital silence (some browsers start a recording so).

    >>> x = quiet_pad(torch.ones(2, 100), 10, 5, torch.Generator().manual_seed(0))
    >>> x.shape, bool((x[:, 10:110] == 1).all()), bool(x[:, :10].abs().max() < 0.1)
    (torch.Size([2, 115]), True, True)
    """
    if lead + tail == 0:
        return wave
    quiet = BatchAugmenter.quiet(wave.shape[0], lead + tail, edge_db, g, wave.device, p_zeros)   # (B, lead + tail)
    return torch.cat([quiet[:, :lead], wave.to(quiet.dtype), quiet[:, lead:]], dim=1)


class BatchAugmenter:
    """The Augmenter chain applied to a batch ``(B, N)`` on its own device, drawing from a ``torch.Generator``.

    On a GPU the per-clip CPU chain is the bottleneck (about 1,000 crops/s per run with 4 loader workers on an
    H200, whatever the model); here every transform is a few batched tensor ops. Differences from Augmenter,
    all to keep it batched: speed perturbation uses one factor per batch (1.0, or with probability ``p_speed`` the low
    or the high end of ``speeds``, like Kaldi's 3-way speed perturbation), and
    babble mixes 3-6 other crops of the same batch instead of random training files, and the telephone channel
    is the 300-3400 Hz band-pass only (in the frequency domain). Select it with ``augment.mode: batch`` in a training config.

    >>> aug = BatchAugmenter.from_config({"mode": "batch", "p_noise": 1.0})
    >>> g = torch.Generator().manual_seed(0)
    >>> aug(torch.randn(4, 16000) * 0.1, g).shape
    torch.Size([4, 16000])
    """

    def __init__(self, p_noise: float = 0.5, snr_db: Sequence[float] = (0.0, 15.0),
                 noise_kinds: Sequence[str] = ("white", "pink", "brown", "babble"),
                 p_speed: float = 0.3, speeds: Sequence[float] = (0.95, 1.05),
                 p_gain: float = 0.5, gain_db: Sequence[float] = (-6.0, 6.0),
                 p_telephone: float = 0.15, p_reverb: float = 0.25, rt60: Sequence[float] = (0.15, 0.8),
                 p_edges: float = 0.0, edge_max: float = 0.35, edge_db: Sequence[float] = (-75.0, -40.0)):
        self.p_edges, self.edge_max, self.edge_db = p_edges, edge_max, tuple(edge_db)
        self.p_noise, self.snr_db, self.noise_kinds = p_noise, tuple(snr_db), tuple(noise_kinds)
        self.p_speed, self.speeds = p_speed, tuple(speeds)
        self.p_gain, self.gain_db = p_gain, tuple(gain_db)
        self.p_telephone, self.p_reverb, self.rt60 = p_telephone, p_reverb, tuple(rt60)

    @classmethod
    def from_config(cls, cfg: Optional[dict]) -> Optional["BatchAugmenter"]:
        if not cfg or not cfg.get("enabled", True) or cfg.get("mode", "clip") != "batch":
            return None
        if cfg.get("p_eq"):
            raise ValueError("augment.p_eq (random EQ) runs in the per-clip chain only: augment.mode clip")
        return cls(**{k: v for k, v in cfg.items() if k not in ("enabled", "mode", "p_eq", "eq_db")})

    @staticmethod
    def _u(g: torch.Generator, n: int, lo: float, hi: float, device) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=g, device=device)

    @staticmethod
    def colored(b: int, n: int, exponents: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """(B, N) unit-RMS Gaussian noise, row i with a 1/f**exponents[i] power spectrum."""
        dev = exponents.device
        nfft = 1 << max(n - 1, 1).bit_length()
        spec = torch.fft.rfft(torch.randn(b, nfft, generator=g, device=dev), dim=-1)       # (B, F)
        f = torch.arange(spec.shape[-1], device=dev, dtype=torch.float32).clamp_min(1.0)
        spec = spec / f[None, :].pow(exponents[:, None] / 2.0)
        spec[:, 0] = 0.0
        x = torch.fft.irfft(spec, n=nfft, dim=-1)[:, :n]
        return x / x.pow(2).mean(-1, keepdim=True).clamp_min(1e-12).sqrt()

    @classmethod
    def quiet(cls, b: int, n: int, edge_db: Sequence[float], g: torch.Generator, device,
              p_zeros: float = 0.0) -> torch.Tensor:
        """(B, N) white, pink or brown noise per row at a level drawn from ``edge_db`` dBFS (all zeros for a row
        with probability ``p_zeros``): the silence of a recording around the words."""
        exps = torch.randint(0, 3, (b,), generator=g, device=device).float()              # white, pink, brown
        level = 10.0 ** (cls._u(g, b, *edge_db, device) / 20.0)
        if p_zeros > 0:
            level = level * (torch.rand(b, generator=g, device=device) >= p_zeros)
        return cls.colored(b, n, exps, g) * level[:, None]

    def quiet_edges(self, x: torch.Tensor, rows: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """``quiet_edges`` on the selected ``rows`` (B,) bool of ``x`` (B, N), by one gather."""
        b, n = x.shape
        dev = x.device
        lead = (self._u(g, b, 0.0, self.edge_max, dev) * n).long() * rows                  # (B,)
        tail = (self._u(g, b, 0.0, self.edge_max, dev) * n).long() * rows
        keep = n - lead - tail
        start = (torch.rand(b, generator=g, device=dev) * (n - keep + 1)).long().clamp_max(n - keep)
        t = torch.arange(n, device=dev)[None, :]                                            # (1, N)
        inside = (t >= lead[:, None]) & (t < (n - tail)[:, None])                          # (B, N)
        src = (start[:, None] + t - lead[:, None]).clamp(0, n - 1)
        return torch.where(inside, x.gather(1, src), self.quiet(b, n, self.edge_db, g, dev))

    def babble(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """(B, N) unit-RMS sum of 3-6 other rows of the batch (each at unit RMS)."""
        b = x.shape[0]
        unit = x / x.pow(2).mean(-1, keepdim=True).clamp_min(1e-12).sqrt()
        k = int(torch.randint(3, 7, (1,), generator=g, device=x.device))
        shifts = torch.randperm(max(b - 1, 1), generator=g, device=x.device)[:k] + 1       # never the row itself
        acc = sum(unit.roll(int(s), dims=0) for s in shifts)
        return acc / acc.pow(2).mean(-1, keepdim=True).clamp_min(1e-12).sqrt()

    @staticmethod
    def telephone(x: torch.Tensor, low: float = 300.0, high: float = 3400.0) -> torch.Tensor:
        """(B, N) band-passed to ``low``-``high`` Hz with the magnitude response of the per-clip chain (high-pass and
        low-pass biquads, Q 0.707, each applied twice), but in the frequency domain and with zero phase:
        torchaudio's biquads run a per-sample loop, which made the whole chain GPU-bound."""
        n = x.shape[-1]
        nfft = 1 << (2 * n - 1).bit_length()            # zero padding: the filter's ringing does not wrap around
        w = torch.linspace(0.0, math.pi, nfft // 2 + 1, device=x.device, dtype=torch.float64)
        z1, z2 = torch.exp(-1j * w), torch.exp(-2j * w)

        def biquad_mag(fc: float, highpass: bool) -> torch.Tensor:   # RBJ cookbook coefficients, as torchaudio
            w0 = 2.0 * math.pi * fc / SR
            alpha = math.sin(w0) / (2.0 * 0.707)
            c = math.cos(w0)
            b = [(1 + c) / 2, -(1 + c), (1 + c) / 2] if highpass else [(1 - c) / 2, 1 - c, (1 - c) / 2]
            a = [1 + alpha, -2 * c, 1 - alpha]
            return ((b[0] + b[1] * z1 + b[2] * z2) / (a[0] + a[1] * z1 + a[2] * z2)).abs()

        gain = (biquad_mag(low, True) * biquad_mag(high, False)) ** 2
        return torch.fft.irfft(torch.fft.rfft(x, nfft) * gain.to(x.dtype), nfft)[..., :n]

    def __call__(self, wave: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        import torchaudio.functional as AF
        x = wave.float()
        b, n = x.shape
        dev = x.device
        pick = lambda p: torch.rand(b, generator=g, device=dev) < p                      # (B,) bool
        if self.p_edges > 0:
            x = self.quiet_edges(x, pick(self.p_edges), g)
        if self.p_speed > 0 and float(torch.rand(1, generator=g, device=dev)) < self.p_speed:
            lo, hi = self.speeds
            factor = [lo, hi][int(torch.randint(0, 2, (1,), generator=g, device=dev))]
            num = int(round(factor * 100))
            y = AF.resample(x, orig_freq=num, new_freq=100)
            x = y[:, :n] if y.shape[-1] >= n else y.repeat(1, -(-n // y.shape[-1]))[:, :n]
        m = pick(self.p_reverb)
        if m.any():
            rows = x[m]
            k = rows.shape[0]
            rt60 = self._u(g, k, *self.rt60, dev)
            length = int(min(self.rt60[1], 0.6) * SR)
            t = torch.arange(length, device=dev, dtype=torch.float32) / SR
            h = torch.randn(k, length, generator=g, device=dev) * torch.exp(-6.9078 * t[None] / rt60[:, None])
            h = h * (t[None] < rt60[:, None])
            h[:, : int(0.001 * SR)] = 0.0
            h = h * (0.3 / h.pow(2).sum(-1, keepdim=True).clamp_min(1e-16).sqrt()) * self._u(g, k, 0.5, 2.0, dev)[:, None]
            h[:, 0] = 1.0
            nfft = 1 << (n + length - 2).bit_length()
            y = torch.fft.irfft(torch.fft.rfft(rows, nfft) * torch.fft.rfft(h, nfft), nfft)[:, :n]
            rms = lambda z: z.pow(2).mean(-1, keepdim=True).clamp_min(1e-12).sqrt()
            x = x.clone()
            x[m] = y * (rms(rows) / rms(y))
        m = pick(self.p_telephone)
        if m.any():
            rows = x[m]
            x = x.clone()
            x[m] = self.telephone(rows)
        m = pick(self.p_noise)
        if m.any():
            kinds = torch.randint(0, len(self.noise_kinds), (b,), generator=g, device=dev)
            exps = torch.tensor([{"white": 0.0, "pink": 1.0, "brown": 2.0}.get(k, 1.0) for k in self.noise_kinds],
                                device=dev)[kinds]
            noise = self.colored(b, n, exps, g)
            if "babble" in self.noise_kinds and b > 1:
                is_babble = kinds == self.noise_kinds.index("babble")
                noise = torch.where(is_babble[:, None], self.babble(x, g), noise)
            snr = self._u(g, b, *self.snr_db, dev)
            p_s = x.pow(2).mean(-1)
            scale = torch.sqrt(p_s / (noise.pow(2).mean(-1).clamp_min(1e-20) * 10.0 ** (snr / 10.0)))
            x = x + (m & (p_s > 0)).float()[:, None] * scale[:, None] * noise
        m = pick(self.p_gain)
        if m.any():
            db = self._u(g, b, *self.gain_db, dev)
            x = x * torch.where(m, 10.0 ** (db / 20.0), torch.ones_like(db))[:, None]
        peak = x.abs().amax(-1, keepdim=True)
        x = torch.where(peak > 1.0, x / peak.clamp_min(1e-12), x)
        return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).contiguous()
