"""Occlusion of time-frequency cells of a waveform: the grid, the fill, and the iterated
fill-and-project passes that bring a filled spectrogram back to a waveform.

One STFT -> fill -> inverse STFT pass leaves only 12-21 dB of attenuation inside a cell (the next
STFT smears the neighbours back in); the passes here repeat the projection until every cell reaches
a stated attenuation or a pass limit, and report the attenuation each cell reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy import signal

#: STFT of the occlusion: 32 ms Hann window at 16 kHz (512 samples), 75 % overlap.
N_FFT = 512
HOP = 256


def hz_to_mel(hz):
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@dataclass(frozen=True)
class Grid:
    """A grid of ``n_bands`` mel-spaced frequency bands x ``n_slices`` equal time slices.

    Attributes
    ----------
    band_edges_hz : ndarray, shape (n_bands + 1,)
        Band edges in Hz, 0 to Nyquist, equally spaced on the HTK mel scale.
    slice_edges_s : ndarray, shape (n_slices + 1,)
        Slice edges in seconds, 0 to the clip length.
    sample_rate : int
        Hz.
    n_samples : int
        Clip length (samples).
    """

    band_edges_hz: np.ndarray
    slice_edges_s: np.ndarray
    sample_rate: int
    n_samples: int

    @property
    def n_bands(self) -> int:
        return len(self.band_edges_hz) - 1

    @property
    def n_slices(self) -> int:
        return len(self.slice_edges_s) - 1

    @property
    def n_cells(self) -> int:
        return self.n_bands * self.n_slices

    def cell(self, index: int) -> tuple[int, int]:
        """Cell ``index`` (band-major: ``band * n_slices + slice``) as ``(band, slice)``."""
        return divmod(int(index), self.n_slices)

    def slice_samples(self, j: int) -> tuple[int, int]:
        """Sample range ``[a, b)`` of time slice ``j``."""
        a, b = self.slice_edges_s[j:j + 2] * self.sample_rate
        return int(round(a)), int(round(b))


def make_grid(*, n_bands: int, n_slices: int, sample_rate: int, n_samples: int) -> Grid:
    """The occlusion grid of a clip of ``n_samples`` at ``sample_rate`` Hz (see :class:`Grid`)."""
    mel = np.linspace(0.0, float(hz_to_mel(sample_rate / 2.0)), n_bands + 1)
    bands = mel_to_hz(mel)
    bands[0], bands[-1] = 0.0, sample_rate / 2.0
    slices = np.linspace(0.0, n_samples / sample_rate, n_slices + 1)
    return Grid(band_edges_hz=bands, slice_edges_s=slices, sample_rate=int(sample_rate), n_samples=int(n_samples))


class Stft:
    """The occlusion's STFT: periodic Hann window of :data:`N_FFT` samples, hop :data:`HOP`, frame ``p``
    centred on sample ``p * HOP`` (frames overlapping the signal, zero-padded past its ends), and its
    least-squares inverse (overlap-add with the window, divided by the summed squared window): a
    perfect-reconstruction pair. Frames of a segment that starts at a multiple of the hop are the clip's own.

    Attributes
    ----------
    f : ndarray, shape (N_FFT // 2 + 1,)
        Bin frequencies, Hz.
    hop : int
    """

    def __init__(self, sample_rate: int):
        self.window = signal.windows.hann(N_FFT, sym=False)
        self.hop = HOP
        self.f = np.fft.rfftfreq(N_FFT, d=1.0 / sample_rate)
        self.p_min = -(N_FFT // 2 // HOP)

    def p_max(self, n_samples: int) -> int:
        """One past the last frame of a signal of ``n_samples``."""
        return (n_samples + N_FFT // 2 - 1) // HOP + 1

    def _padded(self, n_samples: int) -> tuple[int, int]:
        n_frames = self.p_max(n_samples) - self.p_min
        left = -self.p_min * HOP + N_FFT // 2
        return n_frames, left

    def stft(self, x: np.ndarray) -> np.ndarray:
        """``(batch, n_samples)`` -> ``(batch, n_bins, n_frames)`` complex."""
        n = x.shape[-1]
        n_frames, left = self._padded(n)
        total = (n_frames - 1) * HOP + N_FFT
        xp = np.zeros(x.shape[:-1] + (total,), x.dtype)
        xp[..., left:left + n] = x
        frames = np.lib.stride_tricks.sliding_window_view(xp, N_FFT, axis=-1)[..., ::HOP, :]
        return np.swapaxes(sp_fft.rfft(frames * self.window, axis=-1), -1, -2)

    def istft(self, spec: np.ndarray, *, k1: int) -> np.ndarray:
        """Inverse of :meth:`stft` for a signal of ``k1`` samples: ``(batch, n_bins, n_frames)`` -> ``(batch, k1)``."""
        n_frames, left = self._padded(k1)
        frames = sp_fft.irfft(np.swapaxes(spec, -1, -2), n=N_FFT, axis=-1) * self.window
        total = (n_frames - 1) * HOP + N_FFT
        out = np.zeros(spec.shape[:-2] + (total,))
        norm = np.zeros(total)
        for k in range(N_FFT // HOP):  # overlap-add, one phase of the hop at a time
            chunk = frames[..., k::N_FFT // HOP, :]
            seg = out[..., k * HOP:k * HOP + chunk.shape[-2] * N_FFT].reshape(out.shape[:-1] + (-1, N_FFT))
            seg += chunk
        for p in range(n_frames):
            norm[p * HOP:p * HOP + N_FFT] += self.window ** 2
        return out[..., left:left + k1] / norm[left:left + k1]


def stft_op(sample_rate: int) -> Stft:
    """The occlusion's STFT (:class:`Stft`)."""
    return Stft(sample_rate)


def band_bins(grid: Grid, sft: Stft) -> np.ndarray:
    """Band of each STFT bin, shape (n_bins,), int: the band whose ``[low, high)`` holds the bin's frequency
    (Nyquist in the last band)."""
    return np.clip(np.searchsorted(grid.band_edges_hz, sft.f, side="right") - 1, 0, grid.n_bands - 1)


def frame_slices(grid: Grid, sft: Stft, n_samples: int, *, offset: int = 0) -> np.ndarray:
    """Time slice of each STFT frame of a signal of ``n_samples`` that starts at sample ``offset`` of the clip,
    shape (n_frames,), int; -1 for frames whose centre lies outside the clip."""
    centres = (np.arange(sft.p_min, sft.p_max(n_samples)) * sft.hop + offset) / grid.sample_rate
    j = np.searchsorted(grid.slice_edges_s, centres, side="right") - 1
    j[(centres < 0) | (centres >= grid.slice_edges_s[-1])] = -1
    return np.clip(j, -1, grid.n_slices - 1)


def fill_magnitude(waveforms: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """Dataset-mean STFT magnitude per frequency bin, shape (n_bins,): the mean fill.

    Parameters
    ----------
    waveforms : ndarray, shape (n_clips, n_samples)
    sample_rate : int
    """
    sft = stft_op(sample_rate)
    mags = [np.abs(sft.stft(np.asarray(x, np.float64))).mean(axis=-1) for x in waveforms]
    return np.mean(mags, axis=0)


def fill_and_project(x: np.ndarray, masks: np.ndarray, *, fill: np.ndarray, sft: Stft,
                     target_db: float, max_passes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Set the masked STFT magnitudes of each signal to ``fill`` (keeping the current phase) and project
    back to a waveform, pass after pass, until the signal's masked region is ``target_db`` closer to the
    fill than the original was, or ``max_passes`` passes (each signal stops on its own).

    Parameters
    ----------
    x : ndarray, shape (batch, n_samples), float
    masks : ndarray, shape (batch, n_bins, n_frames), bool
        The STFT coefficients to fill, per signal.
    fill : ndarray, shape (n_bins,)
        Target magnitude per bin (zeros: silence).
    target_db, max_passes
        Stopping rule.

    Returns
    -------
    y : ndarray, shape (batch, n_samples), float64
    attenuation_db : ndarray, shape (batch,)
        ``10 log10(D0 / D)`` with ``D = sum over the mask of (|STFT(y)| - fill)^2`` and ``D0`` the same of
        ``x``: how much closer to the fill the masked region came (with silence: the energy ratio of the
        region, before over after); +inf where ``D`` is 0.
    passes : ndarray, shape (batch,), int
    """
    y = np.array(x, np.float64)
    n = y.shape[-1]
    target = np.where(masks, fill[None, :, None], 0.0)
    spec = sft.stft(y)
    mag = np.abs(spec)
    d0 = _deviation(mag, masks, target)
    att, passes = np.zeros(len(y)), np.zeros(len(y), np.int64)
    active = np.flatnonzero(d0 > 0)
    att[d0 <= 0] = np.inf
    for _ in range(max_passes):
        if active.size == 0:
            break
        m, t = masks[active], target[active]
        # the fill's magnitude with the current phase inside the mask; unchanged outside
        s = spec[active] * np.where(m, t / np.maximum(mag[active], 1e-12), 1.0)
        y[active] = sft.istft(s, k1=n)
        spec[active] = sft.stft(y[active])
        mag[active] = np.abs(spec[active])
        passes[active] += 1
        with np.errstate(divide="ignore"):
            att[active] = 10.0 * np.log10(d0[active] / _deviation(mag[active], m, t))
        active = active[att[active] < target_db]
    return y, att, passes


def _deviation(mag: np.ndarray, masks: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.sum(np.where(masks, mag - target, 0.0) ** 2, axis=(1, 2))


def occlude_cells(waveform: np.ndarray, *, grid: Grid, fill: np.ndarray, target_db: float,
                  max_passes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of ``grid`` occluded alone: one waveform per cell.

    The passes of a cell change only the samples its frames cover, so each time slice is processed on a
    segment of the clip one window wider on each side (hop-aligned: the same frames as the whole clip's
    STFT) and pasted back: the same result as whole-clip passes at a fraction of the cost.

    Parameters
    ----------
    waveform : ndarray, shape (n_samples,)
    grid : Grid
    fill : ndarray, shape (n_bins,)
    target_db, max_passes
        See :func:`fill_and_project`.

    Returns
    -------
    occluded : ndarray, shape (n_cells, n_samples), float32
        Row ``band * n_slices + slice``.
    attenuation_db : ndarray, shape (n_cells,)
    passes : ndarray, shape (n_cells,), int
    """
    sft = stft_op(grid.sample_rate)
    x = np.asarray(waveform, np.float64)
    n = x.size
    out = np.repeat(x[None, :].astype(np.float32), grid.n_cells, axis=0)
    att, passes = np.zeros(grid.n_cells), np.zeros(grid.n_cells, np.int64)
    bins = band_bins(grid, sft)
    for j in range(grid.n_slices):
        a, b = grid.slice_samples(j)
        s0 = max(0, ((a - N_FFT - N_FFT // 2) // HOP) * HOP)
        s1 = min(n, b + N_FFT + N_FFT // 2)
        seg = x[s0:s1]
        frames = frame_slices(grid, sft, seg.size, offset=s0) == j
        masks = (bins[None, :, None] == np.arange(grid.n_bands)[:, None, None]) & frames[None, None, :]
        y, a_db, k = fill_and_project(np.repeat(seg[None], grid.n_bands, axis=0), masks, fill=fill, sft=sft,
                                      target_db=target_db, max_passes=max_passes)
        rows = np.arange(grid.n_bands) * grid.n_slices + j
        out[rows, s0:s1] = y.astype(np.float32)
        att[rows], passes[rows] = a_db, k
    return out, att, passes


def occlude_masks(waveform: np.ndarray, cell_sets: np.ndarray, *, grid: Grid, fill: np.ndarray, target_db: float,
                  max_passes: int) -> tuple[np.ndarray, np.ndarray]:
    """The clip with several cells occluded at once, one waveform per row of ``cell_sets``.

    Parameters
    ----------
    waveform : ndarray, shape (n_samples,)
    cell_sets : ndarray, shape (n_sets, n_cells), bool
        Which cells each waveform has occluded.

    Returns
    -------
    occluded : ndarray, shape (n_sets, n_samples), float32
    attenuation_db : ndarray, shape (n_sets,)
    """
    sft = stft_op(grid.sample_rate)
    x = np.asarray(waveform, np.float64)
    bins = band_bins(grid, sft)
    frames = frame_slices(grid, sft, x.size)
    cells = np.asarray(cell_sets, bool).reshape(len(cell_sets), grid.n_bands, grid.n_slices)
    ok = frames >= 0
    masks = np.zeros((len(cells), bins.size, frames.size), bool)
    masks[:, :, ok] = cells[:, bins][:, :, frames[ok]]
    y, att, _ = fill_and_project(np.repeat(x[None], len(cells), axis=0), masks, fill=fill, sft=sft,
                                 target_db=target_db, max_passes=max_passes)
    return y.astype(np.float32), att


def cell_alone(waveform: np.ndarray, *, grid: Grid, cell: int, margin_s: float = 0.05) -> np.ndarray:
    """What the clip holds in one cell: its STFT kept inside the cell only (band-limited, time-gated) and
    cut to the cell's time slice with ``margin_s`` on each side. Shape (n_out,), float32."""
    sft = stft_op(grid.sample_rate)
    x = np.asarray(waveform, np.float64)
    band, j = grid.cell(cell)
    keep = (band_bins(grid, sft) == band)[:, None] & (frame_slices(grid, sft, x.size) == j)[None, :]
    y = sft.istft(np.where(keep, sft.stft(x), 0.0), k1=x.size)
    a, b = grid.slice_samples(j)
    m = int(round(margin_s * grid.sample_rate))
    return y[max(0, a - m):min(x.size, b + m)].astype(np.float32)


def cell_energy(waveform: np.ndarray, *, grid: Grid) -> np.ndarray:
    """Energy of the clip's STFT in each cell, shape (n_cells,) (sum of |STFT|^2): the loudness order."""
    sft = stft_op(grid.sample_rate)
    x = np.asarray(waveform, np.float64)
    power = np.abs(sft.stft(x)) ** 2
    bins, frames = band_bins(grid, sft), frame_slices(grid, sft, x.size)
    out = np.zeros((grid.n_bands, grid.n_slices))
    ok = frames >= 0
    np.add.at(out, (bins[:, None].repeat(ok.sum(), 1), frames[ok][None, :].repeat(bins.size, 0)), power[:, ok])
    return out.reshape(-1)
