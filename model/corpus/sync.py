"""How well the mouth follows the sound: ``textcall corpus check DIR``.

For every clip with ground truth (``*.truth.npz``), the per-frame mouth opening is compared with
the audio's RMS envelope over the same frame intervals (1/25 s each). Reported: the Pearson
correlation at lag 0 over all frames of all clips (each clip z-scored first), the mean per-clip
correlation, and the lag in frames (-max_lag..max_lag; positive = the mouth comes after the sound)
at which the summed cross-correlation peaks. Audio is read from the video's own track by default,
so what is measured is what a viewer of the file gets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncReport:
    clips: int
    frames: int
    correlation: float  # pooled, lag 0
    mean_clip_correlation: float
    peak_lag: int  # frames; > 0: the mouth follows the sound
    lag_curve: dict[int, float]
    skipped: int


def rms_envelope(audio: np.ndarray, rate: int, n_frames: int, fps: float) -> np.ndarray:
    """RMS of ``audio`` over each frame interval ``[i/fps, (i+1)/fps)``, float64 ``[n_frames]``."""
    edges = np.round(np.arange(n_frames + 1) * rate / fps).astype(np.int64)
    audio = np.pad(audio, (0, max(0, edges[-1] - audio.size)))
    sq = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    energy = (sq[edges[1:]] - sq[edges[:-1]]) / np.maximum(edges[1:] - edges[:-1], 1)
    return np.sqrt(energy)


def _z(x: np.ndarray) -> np.ndarray:
    s = x.std()
    return (x - x.mean()) / s if s > 0 else np.zeros_like(x)


def check_sync(root: str | Path, *, audio_from: str = "video", max_lag: int = 5, limit: int | None = None,
               progress: bool = False) -> SyncReport:
    from tqdm import tqdm  # noqa: PLC0415

    from model.corpus.media import MediaError, read_clip  # noqa: PLC0415

    root = Path(root)
    truths = sorted(root.glob("s*/*.truth.npz"))[:limit]
    if not truths:
        raise FileNotFoundError(f"no ground truth (*/…truth.npz) under {root}")
    lags = np.arange(-max_lag, max_lag + 1)
    xcorr = np.zeros(lags.size)
    counts = np.zeros(lags.size)
    pooled_m, pooled_a, per_clip = [], [], []
    skipped = 0
    for truth in tqdm(truths, desc="check sync", unit="clip", disable=not progress):
        video = truth.with_name(truth.name.replace(".truth.npz", ".mpg"))
        wav = root / "audio_25k" / truth.parent.name / truth.name.replace(".truth.npz", ".wav")
        try:
            with np.load(truth) as t:
                opening, fps = t["opening"].astype(np.float64), float(t["fps"])
            if audio_from == "wav":
                import soundfile as sf  # noqa: PLC0415

                audio, rate = sf.read(str(wav), dtype="float32")
            else:
                clip = read_clip(video)
                if clip.audio is None:
                    raise MediaError("no audio track")
                audio, rate = clip.audio, clip.sample_rate
        except (OSError, MediaError, KeyError, RuntimeError) as exc:
            logger.warning("check: skipping %s (%s)", truth, exc)
            skipped += 1
            continue
        env = rms_envelope(audio, rate, opening.size, fps)
        m, a = _z(opening), _z(env)
        pooled_m.append(m)
        pooled_a.append(a)
        per_clip.append(float(np.mean(m * a)))
        for k, lag in enumerate(lags):
            # lag > 0: mouth[t] against audio[t - lag]
            if lag >= 0:
                prod = m[lag:] * a[: a.size - lag]
            else:
                prod = m[: m.size + lag] * a[-lag:]
            xcorr[k] += prod.sum()
            counts[k] += prod.size
    if not per_clip:
        raise RuntimeError(f"no clip under {root} could be measured ({skipped} skipped)")
    curve = xcorr / np.maximum(counts, 1)
    m_all, a_all = np.concatenate(pooled_m), np.concatenate(pooled_a)
    return SyncReport(
        clips=len(per_clip),
        frames=int(m_all.size),
        correlation=float(np.corrcoef(m_all, a_all)[0, 1]),
        mean_clip_correlation=float(np.mean(per_clip)),
        peak_lag=int(lags[int(np.argmax(curve))]),
        lag_curve={int(lag): round(float(c), 4) for lag, c in zip(lags, curve)},
        skipped=skipped,
    )
