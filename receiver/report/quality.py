"""Quality of a decoded clip against its source: PSNR and SSIM on luma, log-spectral distance for audio."""

from __future__ import annotations

import cv2
import numpy as np

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def luma(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma of uint8 RGB ``[F, H, W, 3]`` -> float64 ``[F, H, W]`` in 0..255."""
    rgb = frames.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR (dB) of luma over the whole sequence (one MSE over all frames); inf when identical."""
    _check(reference, decoded)
    mse = float(np.mean((luma(reference) - luma(decoded)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) of luma,
    averaged over frames."""
    _check(reference, decoded)
    scores = [_ssim_frame(a, b) for a, b in zip(luma(reference), luma(decoded))]
    return float(np.mean(scores))


def _ssim_frame(x: np.ndarray, y: np.ndarray) -> float:
    blur = lambda image: cv2.GaussianBlur(image, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    den = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return float(np.mean(num / den))


def _check(reference: np.ndarray, decoded: np.ndarray) -> None:
    if reference.shape != decoded.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {decoded.shape}")
    if reference.ndim != 4 or reference.shape[-1] != 3:
        raise ValueError(f"expected [F, H, W, 3] frames, got {reference.shape}")


def align_audio(reference: np.ndarray, decoded: np.ndarray, rate: int, max_lag_s: float = 0.1) -> np.ndarray:
    """``decoded`` shifted so it lines up with ``reference`` (codec delay), cut/padded to its length."""
    n = reference.size
    if decoded.size == 0:
        return np.zeros(n, np.float32)
    max_lag = int(max_lag_s * rate)
    probe = reference[: min(n, 4 * rate)]
    target = np.pad(decoded, (0, max(0, probe.size + max_lag - decoded.size)))[: probe.size + max_lag]
    corr = np.correlate(target, probe, mode="valid")  # lag 0..max_lag
    lag = int(np.argmax(corr)) if corr.size else 0
    shifted = decoded[lag:]
    out = np.zeros(n, np.float32)
    out[: min(n, shifted.size)] = shifted[:n]
    return out


def log_spectral_distance(reference: np.ndarray, decoded: np.ndarray, rate: int) -> float:
    """Mean log-spectral distance (dB) over frames where the reference is not silent
    (25 ms Hann frames, 10 ms hop; frames within 50 dB of the loudest; bins floored 40 dB below
    the frame's loudest bin, where masking hides codec noise)."""
    if reference.size != decoded.size:
        raise ValueError("align the signals first")
    size, hop = int(0.025 * rate), int(0.010 * rate)
    if reference.size < size:
        raise ValueError("audio shorter than one analysis frame")
    window = np.hanning(size)
    starts = np.arange(0, reference.size - size + 1, hop)

    def power(signal: np.ndarray) -> np.ndarray:
        frames = np.stack([signal[s : s + size] * window for s in starts])
        return np.abs(np.fft.rfft(frames, axis=1)) ** 2

    p_ref, p_dec = power(reference.astype(np.float64)), power(decoded.astype(np.float64))
    floor = p_ref.max(axis=1, keepdims=True) * 1e-4  # per frame, 40 dB below its loudest bin
    p_ref, p_dec = np.maximum(p_ref, floor), np.maximum(p_dec, floor)
    energy = 10 * np.log10(p_ref.sum(axis=1) + 1e-20)
    voiced = energy > energy.max() - 50
    diff = 10 * np.log10(p_ref[voiced]) - 10 * np.log10(p_dec[voiced])
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=1))))
