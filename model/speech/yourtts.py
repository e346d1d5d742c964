"""YourTTS (a multi-speaker, multilingual VITS) through coqui TTS, from files on disk.

A YourTTS folder as coqui distributes it holds::

    config.json          the VitsConfig; names the files below (often with paths of the machine
                         it was trained on, or paths relative to wherever the process runs)
    model_file.pth       {"model": state_dict, ...} (model.pth, best_model.pth, ... also found)
    speakers.json|.pth   d-vectors {clip: {"name": speaker, "embedding": [...]}} (use_d_vector_file),
                         or speaker_ids.json|.pth {name: index} (use_speaker_embedding)
    language_ids.json    {language: index} (use_language_embedding)
    model_se.pth(.tar)   the speaker encoder and its config_se.json, when the config refers to them
    speaker_genders.json optional, ours: {speaker: "female"|"male"}

``YourTTSVoice.from_folder`` checks that every file the config needs is there (naming the first
missing one in ``MissingVoiceFile``), rewrites the config's paths to the folder in a temporary
copy (the folder is never written to) and loads it with coqui's own ``Synthesizer``. Language is
English, as in the paper. coqui's ``Synthesizer.tts`` appends ``PAD_SILENCE_SAMPLES`` of silence
after every sentence; those are cut away using the segments it reports, leading and trailing
silence is trimmed to a small margin, and the sentences are joined with a short fixed pause.
No word or phoneme timings: coqui returns none for VITS.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from model.speech.normalize import normalize
from model.speech.sentences import split_sentences
from model.speech.voice import GENDERS, SAMPLE_RATE, SpeakerInfo, Speech, VoiceError, at_speech_rate, join

logger = logging.getLogger(__name__)

GENDERS_FILE = "speaker_genders.json"
MODEL_FILES = ("model_file.pth", "model.pth", "best_model.pth", "model_file.pth.tar", "best_model.pth.tar", "checkpoint.pth")
# field -> file names tried when the config's own name is not in the folder (as coqui's model manager does)
_DEFAULT_NAMES = {
    "d_vector_file": ("speakers.json", "speakers.pth"),
    "speakers_file": ("speaker_ids.json", "speaker_ids.pth", "speakers.json", "speakers.pth"),
    "language_ids_file": ("language_ids.json",),
    "speaker_encoder_model_path": ("model_se.pth", "model_se.pth.tar"),
    "speaker_encoder_config_path": ("config_se.json",),
    "stats_path": ("scale_stats.npy",),
}
_AUX_PTH = re.compile(r"^(model_se|speakers?|speaker_ids|d_vector)", re.IGNORECASE)
_NAMED_GENDER = re.compile(r"^\s*(female|male)\b", re.IGNORECASE)  # coqui's released labels: "female-en-5"


class MissingVoiceFile(FileNotFoundError):
    """A voice folder lacks a file its config needs. ``missing`` names it."""

    def __init__(self, folder: Path, missing: str, why: str) -> None:
        self.folder, self.missing = Path(folder), missing
        super().__init__(f"{folder}: missing {missing} ({why})")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        from TTS.config import read_json_with_comments  # older coqui configs carry // comments

        return read_json_with_comments(str(path))


def _flag(config: dict, name: str) -> bool:
    args = config.get("model_args") or {}
    return bool(args[name]) if name in args else bool(config.get(name))


def _configured_names(config: dict, field: str) -> list[str]:
    """Base names the config gives ``field`` (top level, model_args, or audio for stats_path)."""
    holders = [config.get("audio") or {}] if field == "stats_path" else [config, config.get("model_args") or {}]
    names = []
    for holder in holders:
        value = holder.get(field)
        for v in value if isinstance(value, list) else [value]:
            if v:
                names.append(Path(str(v)).name)
    return names


def _find(folder: Path, field: str, config: dict, why: str) -> Path:
    configured = _configured_names(config, field)
    for name in (*configured, *_DEFAULT_NAMES[field]):
        if (folder / name).is_file():
            return folder / name
    raise MissingVoiceFile(folder, configured[0] if configured else _DEFAULT_NAMES[field][0], why)


def _set(config: dict, field: str, path: Path) -> None:
    """Point ``field`` at ``path`` wherever the config has it (and in model_args, where coqui reads it)."""
    if field == "stats_path":
        config.setdefault("audio", {})[field] = str(path)
        return
    if field in config:
        config[field] = [str(path)] if isinstance(config[field], list) else str(path)
    args = config.setdefault("model_args", {})
    args[field] = [str(path)] if isinstance(args.get(field), list) else str(path)


def find_model_file(folder: Path) -> Path:
    """The checkpoint in ``folder``: a known name, or the one ``.pth``/``.pth.tar`` that is not an auxiliary file."""
    for name in MODEL_FILES:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(
        p for p in folder.iterdir()
        if p.is_file() and (p.name.endswith(".pth") or p.name.endswith(".pth.tar")) and not _AUX_PTH.match(p.name)
    )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise MissingVoiceFile(folder, MODEL_FILES[0], f"the model checkpoint; also looked for {', '.join(MODEL_FILES[1:])}")
    raise VoiceError(f"{folder}: several checkpoints ({', '.join(p.name for p in candidates)}); pass model_file=")


def resolve_config(folder: Path, config: dict) -> dict:
    """A copy of ``config`` whose file references point into ``folder``; ``MissingVoiceFile`` when one is absent."""
    config = json.loads(json.dumps(config))
    needs: list[tuple[str, str]] = []
    if _flag(config, "use_d_vector_file"):
        needs.append(("d_vector_file", "the speakers' d-vectors, use_d_vector_file is set"))
    elif _flag(config, "use_speaker_embedding") and not config.get("speakers"):
        needs.append(("speakers_file", "the speaker ids, use_speaker_embedding is set"))
    if _flag(config, "use_language_embedding"):
        if _configured_names(config, "language_ids_file"):
            needs.append(("language_ids_file", "the language ids, use_language_embedding is set"))
        elif (folder / _DEFAULT_NAMES["language_ids_file"][0]).is_file():  # as coqui's model manager does
            _set(config, "language_ids_file", folder / _DEFAULT_NAMES["language_ids_file"][0])
    if _configured_names(config, "speaker_encoder_model_path") or _flag(config, "use_speaker_encoder_as_loss"):
        needs.append(("speaker_encoder_model_path", "the speaker encoder the config refers to"))
        needs.append(("speaker_encoder_config_path", "the speaker encoder's config"))
    if _configured_names(config, "stats_path"):
        needs.append(("stats_path", "the spectrogram statistics the audio config refers to"))
    for field, why in needs:
        _set(config, field, _find(folder, field, config, why))
    return config


def read_genders(source: Mapping[str, str] | str | Path) -> dict[str, str]:
    """A speaker -> gender table from a mapping or a JSON file; values must be 'female' or 'male'."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise VoiceError(f"cannot read speaker genders from {path}: {exc}") from exc
    else:
        table = dict(source)
    if not isinstance(table, dict):
        raise VoiceError("speaker genders must be a JSON object {speaker: 'female'|'male'}")
    bad = {k: v for k, v in table.items() if v not in GENDERS}
    if bad:
        raise VoiceError(f"speaker genders must be 'female' or 'male'; got {bad}")
    return {str(k): v for k, v in table.items()}


def trim_silence(audio: np.ndarray, rate: int, *, threshold_db: float = 40.0, margin_s: float = 0.04,
                 frame_s: float = 0.01) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``threshold_db`` below the loudest, keeping ``margin_s``."""
    frame = max(1, int(frame_s * rate))
    n = audio.shape[0] // frame
    if n == 0:
        return audio[:0]
    rms = np.sqrt(np.mean(audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1))  # [n]
    peak = rms.max()
    if peak <= 1e-8:
        return audio[:0]
    loud = np.flatnonzero(rms >= peak * 10 ** (-threshold_db / 20))
    margin = int(margin_s * rate)
    start = max(0, loud[0] * frame - margin)
    end = min(audio.shape[0], (loud[-1] + 1) * frame + margin)
    return audio[start:end]


def split_padding(wav: np.ndarray, segments: list[dict], rate: int, pad: int) -> list[np.ndarray]:
    """Undo ``Synthesizer.tts``'s layout ``[sentence, pad zeros] * n`` using the segments it returned."""
    pieces, pos, pads_silent = [], 0, True
    for seg in segments:
        n = int(round((seg["end"] - seg["start"]) * rate))
        pieces.append(wav[pos : pos + n])
        pads_silent &= not np.any(wav[pos + n : pos + n + pad])
        pos += n + pad
    if pos == wav.shape[0] and pads_silent:
        return pieces
    # layout not as expected (another coqui version?): cut at runs of at least `pad` exact zeros
    logger.warning("coqui's sentence layout was not as expected (%d samples, %d segments); cutting at silent runs",
                   wav.shape[0], len(segments))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (wav == 0).astype(np.int8), [0]])))
    runs = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= pad]
    bounds = [0] + [x for run in runs for x in run] + [wav.shape[0]]
    pieces = [wav[a:b] for a, b in zip(bounds[::2], bounds[1::2], strict=True)]
    return [p for p in pieces if p.size]

class YourTTSVoice:
    """``Voice`` over a coqui YourTTS/VITS model; build it with ``from_folder``."""

    name = "yourtts"

    def __init__(
        self,
        synthesizer,
        *,
        genders: Mapping[str, str] | None = None,
        language: str | None = "en",
        max_chars: int = 250,
        sentence_gap_s: float = 0.2,
        margin_s: float = 0.04,
        progress: bool = False,
        source: str = "",
    ) -> None:
        if sentence_gap_s < 0 or margin_s < 0:
            raise ValueError("sentence_gap_s and margin_s must be non-negative")
        self._synth = synthesizer
        self.max_chars = max_chars
        self.sentence_gap_s = sentence_gap_s
        self.margin_s = margin_s
        self.progress = progress
        self.source = source
        self._lock = threading.Lock()
        model = synthesizer.tts_model
        self.model_rate = int(synthesizer.output_sample_rate)
        self._segment_rate = int(synthesizer.tts_config.audio["sample_rate"])  # what coqui times segments with
        self.language = self._pick_language(model, language)
        self._names = self._speaker_names(model)  # our id -> coqui's speaker name (None: single speaker)
        self._genders = self._gender_table(genders)
        config = synthesizer.tts_config
        self.alphabet = None if config.get("use_phonemes") else frozenset(
            c for c in model.tokenizer.characters.vocab if len(c) == 1
        )

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def from_folder(
        cls,
        path: str | Path,
        device: str = "cpu",
        *,
        genders: Mapping[str, str] | str | Path | None = None,
        model_file: str | Path | None = None,
        **kwargs: Any,
    ) -> YourTTSVoice:
        """Load the YourTTS files in ``path`` (see the module docstring) onto ``device``.

        ``genders``: a {speaker: 'female'|'male'} mapping or JSON file; by default
        ``speaker_genders.json`` in the folder, else genders read from speaker names that start with
        "female"/"male" (coqui's released labels), else unknown.
        """
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise MissingVoiceFile(folder, str(folder), "no such folder")
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise MissingVoiceFile(folder, "config.json", "the model's VitsConfig")
        checkpoint = Path(model_file) if model_file else find_model_file(folder)
        if not checkpoint.is_file():
            raise MissingVoiceFile(folder, str(checkpoint), "the model checkpoint given as model_file")
        config = resolve_config(folder, _read_json(config_file))
        if genders is None and (folder / GENDERS_FILE).is_file():
            genders = folder / GENDERS_FILE
        table = read_genders(genders) if genders is not None else None

        import torch
        from TTS.utils.synthesizer import Synthesizer

        with tempfile.TemporaryDirectory(prefix="textcall-yourtts-") as tmp:
            resolved = Path(tmp) / "config.json"
            resolved.write_text(json.dumps(config, indent=1), encoding="utf-8")
            try:
                synth = Synthesizer(tts_checkpoint=str(checkpoint), tts_config_path=str(resolved), use_cuda=False)
            except (RuntimeError, KeyError, ValueError, OSError) as exc:
                raise VoiceError(f"coqui could not load the YourTTS model in {folder}: {exc}") from exc
        synth.tts_model.to(torch.device(device))
        logger.info("loaded YourTTS from %s on %s (%d Hz)", folder, device, synth.output_sample_rate)
        return cls(synth, genders=table, source=str(folder), **kwargs)

    @staticmethod
    def _pick_language(model, language: str | None) -> str | None:
        names = list(model.language_manager.language_names) if model.language_manager is not None else []
        if not names or language is None:
            return None
        if language in names:
            return language
        close = [n for n in names if n.lower().replace("_", "-").split("-")[0] == language.lower()]
        if not close:
            raise VoiceError(f"the model has no language {language!r}; it has {', '.join(names)}")
        return close[0]

    @staticmethod
    def _speaker_names(model) -> dict[str, str | None]:
        manager = model.speaker_manager
        names = list(manager.speaker_names) if manager is not None else []
        if not names:
            return {"default": None}
        ids: dict[str, str | None] = {}
        for name in names:  # coqui's released YourTTS has names with a trailing newline
            base = name.strip() or "speaker"
            sid, k = base, 2
            while sid in ids:
                sid, k = f"{base}~{k}", k + 1
            ids[sid] = name
        return ids

    def _gender_table(self, table: Mapping[str, str] | None) -> dict[str, str | None]:
        genders: dict[str, str | None] = dict.fromkeys(self._names)
        if table is not None:
            known = {sid for sid, name in self._names.items() if sid in table or name in table}
            unknown = sorted(set(table) - set(self._names) - {n for n in self._names.values() if n})
            if not known:
                raise VoiceError(f"the speaker genders name none of the model's speakers ({', '.join(list(self._names)[:8])} ...)")
            if unknown:
                logger.warning("speaker genders name %d speaker(s) the model does not have: %s", len(unknown), ", ".join(unknown[:8]))
            for sid, name in self._names.items():
                genders[sid] = table.get(sid, table.get(name or ""))
            logger.info("speaker genders from the table: %d of %d speakers", len(known), len(self._names))
            return genders
        for sid in self._names:
            m = _NAMED_GENDER.match(sid)
            genders[sid] = m.group(1).lower() if m else None
        if any(genders.values()):
            logger.info("speaker genders read from the speaker names (%s ...)", ", ".join(list(self._names)[:4]))
        else:
            logger.warning("no %s and no gender in the speaker names: genders unknown, a caption cannot choose the speaker",
                           GENDERS_FILE)
        return genders

    # --------------------------------------------------------------------------------- speaking
    def speakers(self) -> list[SpeakerInfo]:
        return [SpeakerInfo(sid, self._genders[sid]) for sid in self._names]

    def synthesize(self, text: str, *, speaker: str | None = None) -> Speech:
        sid = speaker if speaker is not None else next(iter(self._names))
        if sid not in self._names:
            raise ValueError(f"unknown YourTTS speaker {sid!r}; the model has {', '.join(list(self._names)[:10])} ...")
        said = normalize(text, alphabet=self.alphabet)
        if not said:
            return Speech.empty()
        sentences = split_sentences(said, self.max_chars)
        pieces: list[Speech] = []
        iterator = sentences
        if self.progress and len(sentences) > 1:
            from tqdm import tqdm

            iterator = tqdm(sentences, desc="yourtts", unit="sentence", leave=False)
        for sentence in iterator:
            for audio in self._sentence(sentence, sid):
                pieces.append(Speech(at_speech_rate(audio, self.model_rate), SAMPLE_RATE))
        return join(pieces, self.sentence_gap_s)

    def _sentence(self, text: str, sid: str) -> list[np.ndarray]:
        """coqui's waveform(s) for ``text``, its padding cut out and silence trimmed; float32 at the model rate."""
        import torch
        from TTS.utils.synthesizer import PAD_SILENCE_SAMPLES

        device = next(self._synth.tts_model.parameters()).device
        devices = [device.index or 0] if device.type == "cuda" else []
        with self._lock, torch.inference_mode(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(zlib.crc32(f"{sid}|{text}".encode()))  # the same text sounds the same
            try:
                out = self._synth.tts(text, speaker_name=self._names[sid], language_name=self.language,
                                      split_sentences=True, return_dict=True)
            except (RuntimeError, ValueError, KeyError) as exc:
                raise VoiceError(f"YourTTS failed on {text[:60]!r}: {exc}") from exc
        wav = np.asarray(out["wav"], dtype=np.float32)
        pieces = split_padding(wav, out["segments"], self._segment_rate, PAD_SILENCE_SAMPLES)
        trimmed = [trim_silence(p, self.model_rate, margin_s=self.margin_s) for p in pieces]
        return [np.clip(p, -1.0, 1.0) for p in trimmed if p.size]
