"""The lip-sync measures on synthetic corpus clips: true sync at 0, audio delayed by 5 frames at +5."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.audio import resample
from model.corpus.media import read_clip, write_mp4
from model.corpus.synth import SynthConfig, plan, render_clip
from model.lipsync.checkpoint import save_model
from model.lipsync.cli import SHIPPED_SYNCNET, _run_eval_sync
from model.lipsync.face import FaceBox
from model.lipsync.metric import delay_audio, motion_sync, pool_motion, pool_syncnet, resample_frames, syncnet_sync
from model.lipsync.networks import build, preset

SHIFT = 5  # frames at 16 fps = 5000 samples at 16 kHz


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three synthetic GRID-like clips (25 fps MPEG-1, 360x288), brought to 16 fps and 16 kHz."""
    out = tmp_path_factory.mktemp("corpus")
    _, jobs = plan(SynthConfig(out=out, n_female=1, n_male=1, sentences=2, seed=5, workers=1))
    result = []
    for job in jobs[:3]:
        render_clip(job)
        clip = read_clip(out / job.speaker.id / f"{job.sentence.id}.mpg")
        result.append((resample_frames(clip.frames, clip.fps), resample(clip.audio, clip.sample_rate, 16_000)))
    return result


def delayed(audio: np.ndarray, frames: int) -> np.ndarray:
    """The audio heard ``frames`` 16 fps frames late (same length)."""
    out = delay_audio(audio, frames)
    assert out.size == audio.size and np.array_equal(out[frames * 1000:], audio[: audio.size - frames * 1000])
    return out


def test_model_free_measure_finds_true_and_shifted_sync(clips) -> None:
    assert all(f.shape[1:] == (288, 360, 3) and abs(a.size / 16000 - len(f) / 16) < 0.1 for f, a in clips)
    true = pool_motion(clips)
    shifted = pool_motion([(f, delayed(a, SHIFT)) for f, a in clips])
    assert abs(true.lag) <= 1 and true.correlation > 0.2
    assert abs(shifted.lag - SHIFT) <= 1
    one = motion_sync(*clips[0])
    assert set(one.curve) == set(range(-15, 16)) and -1 <= one.correlation <= 1


def test_syncnet_search_runs_with_any_expert(clips) -> None:
    torch.manual_seed(0)
    expert = build(preset("syncnet", "tiny")).eval()
    frames, audio = clips[0]
    score = syncnet_sync(expert, frames, audio, max_offset=15)
    assert score.windows == len(frames) - 4 and -15 <= score.offset <= 15
    assert score.lse_d == pytest.approx(min(score.distances.values())) and score.lse_c >= 0
    pooled = pool_syncnet([score, syncnet_sync(expert, *clips[1])])
    assert pooled.offset in pooled.distances


class _Embeddings(torch.nn.Module):
    """A stand-in SyncNet whose encoders return fixed embeddings, one row per window."""

    def __init__(self, video: torch.Tensor, audio: torch.Tensor) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.video, self.audio = video, audio

    def face_encoder(self, faces: torch.Tensor) -> torch.Tensor:
        return self.video[: len(faces)]

    def audio_encoder(self, mels: torch.Tensor) -> torch.Tensor:
        return self.audio[: len(mels)]


def test_an_offset_few_windows_can_judge_does_not_win_by_chance() -> None:
    """Every window is near its own audio (offset 0) except the last three, which match the first
    three audio windows exactly: offset -20, which only those three windows can evaluate. Averaged
    over the windows inside the clip alone, -20 scored 0 and won; counted over every window (the
    rest at the chance distance), offset 0 wins."""
    frames, audio = np.zeros((25, 64, 64, 3), np.uint8), np.zeros(25_000, np.float32)
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(25, 16, generator=gen), dim=1)
    v = a[2:23] + 0.05 * torch.randn(21, 16, generator=gen)  # window i hears audio i + 2
    v[18:] = a[:3]
    score = syncnet_sync(_Embeddings(v, a), frames, audio, max_offset=20, box=FaceBox(0, 0, 64, 64))
    assert score.offset == 0
    assert score.distances[-20] > score.distances[0] + 0.3
    assert len(score.distances) == 41  # every offset still reported


@pytest.mark.skipif(not (SHIPPED_SYNCNET / "model.safetensors").is_file(),
                    reason="no trained SyncNet shipped at model/weights/syncnet (train one: textcall train syncnet)")
def test_trained_syncnet_finds_true_and_shifted_sync(clips) -> None:
    from model.lipsync.checkpoint import load_model

    expert, _ = load_model(SHIPPED_SYNCNET, kind="syncnet")
    true = pool_syncnet([syncnet_sync(expert, f, a) for f, a in clips])
    shifted = pool_syncnet([syncnet_sync(expert, f, delayed(a, SHIFT)) for f, a in clips])
    assert abs(true.offset) <= 1 and true.lse_c > 0
    assert abs(shifted.offset - SHIFT) <= 1


def test_eval_sync_command(clips, tmp_path: Path, capsys) -> None:
    videos = []
    for k, (frames, audio) in enumerate(clips[:2]):
        videos.append(str(tmp_path / f"clip{k}.mp4"))
        write_mp4(videos[-1], frames, audio, fps=16, sample_rate=16000)
    expert = tmp_path / "expert"
    save_model(expert, build(preset("syncnet", "tiny")), preset("syncnet", "tiny"))

    class Args:
        syncnet, max_offset, json, threads, shift = str(expert), 15, True, None, 0

    Args.video = videos[:1]
    assert _run_eval_sync(Args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == len(clips[0][0]) and {"lag", "correlation"} <= report["model_free"].keys()
    assert {"offset", "lse_d", "lse_c"} <= report["syncnet"].keys()
    Args.video, Args.json, Args.shift = videos, False, 5
    assert _run_eval_sync(Args) == 0
    out = capsys.readouterr().out
    assert "pooled over 2 clips" in out and "expect offset +5" in out and out.count("syncnet: offset") == 3
    Args.video = [str(tmp_path / "missing.mp4")]
    assert _run_eval_sync(Args) == 2 and "no such file" in capsys.readouterr().err
