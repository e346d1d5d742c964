"""Lip-sync measures of a talking-head clip at 16 fps.

Offset convention (both measures): ``+k`` means the audio lags the video by ``k`` frames, i.e. the
sound that belongs to frame ``i`` is heard at frame ``i + k`` (delaying a true clip's audio by 5
frames gives +5).

(a) SyncNet, as LSE-D / LSE-C (``syncnet_python``'s offset search): embed every 5-frame window of
lower-half face crops ``v_i`` (frames ``i..i+4``) and every frame-centred mel window ``a_c``; for
each offset ``k`` in ``-K..K`` the mean Euclidean distance ``D(k) = mean_i d_i(k)`` over **every**
window ``i``, with ``d_i(k) = |v_i - a_{i+2+k}|`` where that audio lies inside the clip and, where it
does not, the clip's chance distance (the mean of ``|v_i - a_j|`` over all pairs). Offset = argmin D;
**LSE-D** = min D; **LSE-C** = median_k D(k) - min D (higher = more confident). Like
``syncnet_python``, which averages over every window and pads the audio features beyond the clip,
each ``D(k)`` covers the same windows, so an offset that only a few windows can evaluate does not win
by chance (averaging only the windows inside the clip did: on 1.5-2 s clips the minimum often sat at
+/-8..15 frames, judged on 3-10 windows). The padding is the chance distance rather than the zero
vector because the embeddings here are unit length: a zero vector is at distance 1, below the
distance of unrelated pairs (about 1.1), and would favour the edges instead.

(b) Model-free: mouth motion ``m_i`` = mean absolute central difference ``|f_{i+1} - f_{i-1}| / 2``
of the grey levels in the lower-middle part of the face box (x 25-75 %, y 55-95 %), against the
audio RMS envelope ``e_i`` over each frame's interval, taken as its rate of change
``|e_{i+1} - e_{i-1}| / 2``: frame differences measure how fast the mouth changes, so they follow
the envelope's changes (onsets, releases), not its level. (Measured on 24 synthetic corpus clips:
against the level the peak sits near -2 frames on true clips; against the change, at 0.) Both
series are z-scored over the clip and cross-correlated with the biased estimator
``c(k) = sum_i m_i e_{i+k} / F`` (the overlap's sum over the clip length, so lags with little overlap
are not favoured by chance), ``k`` in ``-K..K``; the best lag is the argmax. One 3-second clip is
noisy (about 2 in 3 land within a frame of the truth); ``pool_motion`` adds the curves of several
clips, which is what a measurement over a set of clips should report.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from model.audio import resample
from model.lipsync.audio import SAMPLE_RATE, mel_windows, melspectrogram
from model.lipsync.face import CROP, FaceBox, clip_box, crop_frames

logger = logging.getLogger(__name__)

FPS = 16
T = 5


@dataclass(frozen=True)
class SyncNetScore:
    offset: int  # frames, + = audio lags video
    lse_d: float  # mean distance at the offset
    lse_c: float  # median distance - minimum distance
    windows: int  # 5-frame windows at offset 0
    distances: dict[int, float]  # offset -> mean distance
    expert: str = ""


@dataclass(frozen=True)
class MotionScore:
    lag: int  # frames, + = audio lags video
    correlation: float  # at the best lag
    correlation_at_0: float
    curve: dict[int, float]


def _check(frames: np.ndarray, audio: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"audio must be mono [S] and not empty, got {audio.shape}")


# -- (b) model-free ------------------------------------------------------------------------------
def rms_envelope(audio: np.ndarray, n_frames: int, fps: float = FPS, rate: int = SAMPLE_RATE) -> np.ndarray:
    """RMS over each frame interval ``[i/fps, (i+1)/fps)``: float64 ``[n_frames]`` (zeros past the end)."""
    edges = np.round(np.arange(n_frames + 1) * rate / fps).astype(np.int64)
    audio = np.pad(audio.astype(np.float64), (0, max(0, int(edges[-1]) - audio.size)))
    sq = np.concatenate([[0.0], np.cumsum(audio ** 2)])
    return np.sqrt((sq[edges[1:]] - sq[edges[:-1]]) / np.maximum(edges[1:] - edges[:-1], 1))


def mouth_motion(frames: np.ndarray, box: FaceBox) -> np.ndarray:
    """Mean absolute central difference of the lower-middle face region: float64 ``[F]``."""
    x0 = box.x0 + int(0.25 * box.width)
    x1 = box.x0 + max(int(0.75 * box.width), int(0.25 * box.width) + 1)
    y0 = box.y0 + int(0.55 * box.height)
    y1 = box.y0 + max(int(0.95 * box.height), int(0.55 * box.height) + 1)
    region = frames[:, y0:y1, x0:x1].astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # [F, h, w]
    if len(region) < 3:
        return np.zeros(len(region))
    diff = np.abs(region[2:] - region[:-2]).mean(axis=(1, 2)) / 2.0  # centred on frames 1..F-2
    return np.concatenate([diff[:1], diff, diff[-1:]])


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def motion_curve(frames: np.ndarray, audio: np.ndarray, *, fps: float = FPS, max_lag: int = 15,
                 box: FaceBox | None = None, min_overlap: int = 8) -> dict[int, float]:
    """Cross-correlation ``lag -> c(lag)`` of mouth motion with the envelope's change (see above)."""
    _check(frames, audio)
    box = box or clip_box(frames)
    motion = _z(mouth_motion(frames, box))
    n_audio = int(np.floor(audio.size / SAMPLE_RATE * fps))
    env = rms_envelope(audio, n_audio, fps)
    change = _z(np.abs(np.gradient(env)) if n_audio >= 2 else np.zeros(n_audio))
    curve: dict[int, float] = {}
    i = np.arange(len(motion))
    for k in range(-max_lag, max_lag + 1):
        ok = (i + k >= 0) & (i + k < n_audio)
        if ok.sum() >= min_overlap:
            curve[k] = float((motion[ok] * change[i[ok] + k]).sum() / len(motion))
    if not curve or not np.any(motion) or not np.any(change):
        raise ValueError(f"clip too short, silent or still for the model-free measure ({len(frames)} frames)")
    return curve


def _score(curve: dict[int, float]) -> MotionScore:
    lag = max(curve, key=curve.get)
    return MotionScore(lag=int(lag), correlation=curve[lag], correlation_at_0=curve.get(0, float("nan")), curve=curve)


def motion_sync(frames: np.ndarray, audio: np.ndarray, *, fps: float = FPS, max_lag: int = 15,
                box: FaceBox | None = None) -> MotionScore:
    """Model-free measure (b) of one clip; ``frames`` uint8 ``[F, H, W, 3]`` at ``fps``, audio at 16 kHz."""
    return _score(motion_curve(frames, audio, fps=fps, max_lag=max_lag, box=box))


def pool_motion(clips, *, fps: float = FPS, max_lag: int = 15) -> MotionScore:
    """Model-free measure over several ``(frames, audio)`` clips: curves weighted by clip length."""
    total: dict[int, float] = {}
    weight: dict[int, float] = {}
    for frames, audio in clips:
        for k, v in motion_curve(frames, audio, fps=fps, max_lag=max_lag).items():
            total[k] = total.get(k, 0.0) + v * len(frames)
            weight[k] = weight.get(k, 0.0) + len(frames)
    if not total:
        raise ValueError("no clips")
    return _score({k: total[k] / weight[k] for k in sorted(total)})


# -- (a) SyncNet ---------------------------------------------------------------------------------
@torch.inference_mode()
def syncnet_sync(expert, frames: np.ndarray, audio: np.ndarray, *, fps: float = FPS, max_offset: int = 15,
                 box: FaceBox | None = None, min_windows: int = 3, batch: int = 64, name: str = "") -> SyncNetScore:
    """SyncNet offset / LSE-D / LSE-C (a) with a loaded ``SyncNet`` (eval mode)."""
    _check(frames, audio)
    if len(frames) < T:
        raise ValueError(f"need at least {T} frames, got {len(frames)}")
    device = next(expert.parameters()).device
    box = box or clip_box(frames)
    crops = torch.from_numpy(crop_frames(frames, box, CROP)).permute(0, 3, 1, 2).float().div_(255.0)  # [F,3,96,96]
    lower = crops[:, :, CROP // 2:, :]  # [F, 3, 48, 96]
    n_win = len(frames) - T + 1
    faces = torch.stack([lower[i:i + T].reshape(T * 3, CROP - CROP // 2, CROP) for i in range(n_win)])  # [W,15,48,96]
    n_audio = int(np.floor(audio.size / SAMPLE_RATE * fps))
    if n_audio < 1:
        raise ValueError("audio shorter than one frame")
    mels = mel_windows(melspectrogram(audio), n_audio, fps)  # [A, 1, 80, 16]
    v = torch.cat([expert.face_encoder(faces[k:k + batch].to(device)).flatten(1) for k in range(0, n_win, batch)])
    a = torch.cat([expert.audio_encoder(mels[k:k + batch].to(device)).flatten(1) for k in range(0, n_audio, batch)])
    v = torch.nn.functional.normalize(v, dim=1).cpu()
    a = torch.nn.functional.normalize(a, dim=1).cpu()
    pairs = torch.cdist(v, a)  # [W, A]: every video window against every audio window
    chance = float(pairs.mean())  # what a window whose audio lies outside the clip contributes
    distances: dict[int, float] = {}
    i = torch.arange(n_win)
    for k in range(-max_offset, max_offset + 1):
        c = i + T // 2 + k
        ok = (c >= 0) & (c < n_audio)
        n_ok = int(ok.sum())
        if n_ok >= min_windows:
            distances[k] = float((pairs[i[ok], c[ok]].sum() + chance * (n_win - n_ok)) / n_win)
    if not distances:
        raise ValueError(f"clip too short for the SyncNet search ({len(frames)} frames)")
    offset = min(distances, key=distances.get)
    d = np.array(list(distances.values()))
    return SyncNetScore(offset=int(offset), lse_d=float(d.min()), lse_c=float(np.median(d) - d.min()),
                        windows=int(n_win), distances=distances, expert=name)


def pool_syncnet(scores: list[SyncNetScore]) -> SyncNetScore:
    """One offset for several clips: distance curves averaged (weighted by windows) over the offsets
    every clip could evaluate."""
    if not scores:
        raise ValueError("no scores")
    common = set.intersection(*(set(s.distances) for s in scores))
    if not common:
        raise ValueError("the clips share no evaluable offset")
    weight = sum(s.windows for s in scores)
    curve = {k: sum(s.distances[k] * s.windows for s in scores) / weight for k in sorted(common)}
    offset = min(curve, key=curve.get)
    d = np.array(list(curve.values()))
    return SyncNetScore(offset=int(offset), lse_d=float(d.min()), lse_c=float(np.median(d) - d.min()),
                        windows=weight, distances=curve, expert=scores[0].expert)


# -- files ---------------------------------------------------------------------------------------
def resample_frames(frames: np.ndarray, fps: float, target: float = FPS) -> np.ndarray:
    """Nearest source frame to each target frame's centre (no-op at the target rate)."""
    if abs(fps - target) < 1e-6:
        return frames
    n = int(np.floor(len(frames) / fps * target))
    src = np.minimum(np.floor((np.arange(n) + 0.5) * fps / target).astype(int), len(frames) - 1)
    return frames[src]


def _load_expert(syncnet):
    from model.lipsync.checkpoint import load_model  # noqa: PLC0415

    return load_model(syncnet, "cpu", kind="syncnet")[0]


def delay_audio(audio: np.ndarray, frames: int, fps: float = FPS) -> np.ndarray:
    """The same track heard ``frames`` frames later (negative: earlier), same length, zero-filled."""
    k = int(round(abs(frames) * SAMPLE_RATE / fps))
    if k == 0:
        return audio
    pad = np.zeros(min(k, audio.size), np.float32)
    return np.concatenate([pad, audio])[: audio.size] if frames > 0 else np.concatenate([audio, pad])[k:]


def evaluate_clip(frames: np.ndarray, audio: np.ndarray, *, syncnet=None, max_offset: int = 15,
                  fps: float = FPS, expert=None) -> dict:
    """Both measures on a 16 fps clip with 16 kHz audio; ``syncnet`` = expert folder (or ``expert``
    a loaded one), else the SyncNet part is left out."""
    box = clip_box(frames)
    report = {"frames": int(len(frames)), "seconds": len(frames) / fps,
              "box": [box.x0, box.y0, box.x1, box.y1],
              "model_free": asdict(motion_sync(frames, audio, fps=fps, max_lag=max_offset, box=box))}
    if expert is None and syncnet is not None:
        expert = _load_expert(syncnet)
    if expert is not None:
        report["syncnet"] = asdict(syncnet_sync(expert, frames, audio, fps=fps, max_offset=max_offset, box=box,
                                                name=str(syncnet or "")))
    return report


def read_for_sync(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A video file's frames at 16 fps and its audio at 16 kHz."""
    from model.corpus.media import MediaError, read_clip  # noqa: PLC0415

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    clip = read_clip(path)
    if clip.audio is None or clip.audio.size == 0:
        raise MediaError(f"{path}: no audio track to measure sync against")
    return resample_frames(clip.frames, clip.fps, FPS), resample(clip.audio, clip.sample_rate, SAMPLE_RATE)


def evaluate_file(path: str | Path, *, syncnet=None, max_offset: int = 15, shift: int = 0) -> dict:
    """Read a video with audio (PyAV), bring it to 16 fps / 16 kHz, optionally delay its audio by
    ``shift`` frames, and measure it."""
    frames, audio = read_for_sync(path)
    return {"path": str(path), **evaluate_clip(frames, delay_audio(audio, shift), syncnet=syncnet, max_offset=max_offset)}


def evaluate_files(paths, *, syncnet=None, max_offset: int = 15, shift: int = 0) -> dict:
    """Every file measured alone, and both measures pooled over all of them."""
    expert = _load_expert(syncnet) if syncnet is not None else None
    clips, per_clip, scores = [], [], []
    for path in paths:
        frames, audio = read_for_sync(path)
        audio = delay_audio(audio, shift)
        clips.append((frames, audio))
        per_clip.append({"path": str(path), **evaluate_clip(frames, audio, expert=expert, syncnet=syncnet, max_offset=max_offset)})
        if expert is not None:
            scores.append(SyncNetScore(**per_clip[-1]["syncnet"]))
    pooled = {"model_free": asdict(pool_motion(clips, max_lag=max_offset))}
    if scores:
        pooled["syncnet"] = asdict(pool_syncnet(scores))
    return {"clips": per_clip, "pooled": pooled, "shift": shift, "syncnet": str(syncnet) if syncnet else None}
