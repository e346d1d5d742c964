"""The YourTTS voice end to end on a tiny YourTTS-like VITS built here with coqui's own classes.

The model has random weights, so what it says is noise; the tests check the plumbing: files found
and paths rewritten, speaker chosen by gender, coqui's inter-sentence padding cut away, 16 kHz
float32 out, a named error for every missing file.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("TTS")
torch = pytest.importorskip("torch")

from model.speech import choose_speaker, load_voice  # noqa: E402
from model.speech.voice import VoiceError  # noqa: E402
from model.speech.yourtts import MissingVoiceFile, YourTTSVoice, split_padding, trim_silence  # noqa: E402

MODEL_RATE = 22_050  # not 16 kHz, so resampling is exercised
GENDERS = {"p225": "female", "p226": "male", "p227": "male", "p228": "female"}
D_VECTOR_DIM = 16


def build_speaker_encoder(folder: Path) -> None:
    """A tiny LSTM speaker encoder saved as model_se.pth + config_se.json (coqui's layout)."""
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.encoder.configs.speaker_encoder_config import SpeakerEncoderConfig
    from TTS.encoder.utils.generic_utils import setup_encoder_model

    config = SpeakerEncoderConfig(
        model_params={"model_name": "lstm", "input_dim": 20, "proj_dim": D_VECTOR_DIM, "lstm_dim": 8, "num_lstm_layers": 1},
        audio=BaseAudioConfig(sample_rate=16_000, num_mels=20, fft_size=512, win_length=400, hop_length=160),
        num_classes_in_batch=2, num_utter_per_class=2, num_loader_workers=0,
    )
    torch.save({"model": setup_encoder_model(config).state_dict()}, folder / "model_se.pth")
    config.save_json(str(folder / "config_se.json"))


def build_tiny_yourtts(
    folder: Path, speakers: dict[str, list[float]] | None = None, *, speaker_ids: bool = False,
    encoder: bool = False, seed: int = 0,
) -> Path:
    """A YourTTS-shaped VITS (d-vectors or speaker ids, language embedding, characters) saved as coqui saves it.

    The config refers to its files with paths of a machine that is not this one, or relative
    paths, as released configs do.
    """
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    names = speakers or {name: rng.standard_normal(D_VECTOR_DIM).tolist() for name in GENDERS}
    if speaker_ids:
        speaker_file = folder / "speaker_ids.json"
        speaker_file.write_text(json.dumps({name: i for i, name in enumerate(names)}))
        speaker_args = {"use_speaker_embedding": True, "speakers_file": str(speaker_file), "speaker_embedding_channels": 8}
    else:
        speaker_file = folder / "speakers.json"
        d_vectors = {
            f"spk{i}_clip{k}.wav": {"name": name, "embedding": vec} for i, (name, vec) in enumerate(names.items()) for k in (1, 2)
        }
        speaker_file.write_text(json.dumps(d_vectors))
        speaker_args = {"use_d_vector_file": True, "d_vector_dim": D_VECTOR_DIM, "d_vector_file": [str(speaker_file)]}
    (folder / "language_ids.json").write_text(json.dumps({"en": 0, "fr-fr": 1, "pt-br": 2}))
    foreign = "/home/coqui/your_tts_run"
    encoder_args = {}
    if encoder:
        build_speaker_encoder(folder)
        encoder_args = {"speaker_encoder_model_path": str(folder / "model_se.pth"),
                        "speaker_encoder_config_path": str(folder / "config_se.json")}
    args = VitsArgs(
        hidden_channels=16, hidden_channels_ffn_text_encoder=32, num_heads_text_encoder=2, num_layers_text_encoder=1,
        num_layers_posterior_encoder=1, num_layers_flow=1, resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3, 5]], upsample_rates_decoder=[8, 8, 4],
        upsample_initial_channel_decoder=16, upsample_kernel_sizes_decoder=[16, 16, 8], out_channels=129,
        use_sdp=False, init_discriminator=False, **speaker_args, **encoder_args,
        use_language_embedding=True, embedded_language_dim=4, language_ids_file=str(folder / "language_ids.json"),
    )
    audio = BaseAudioConfig(sample_rate=MODEL_RATE, hop_length=256, win_length=256, fft_size=256, num_mels=20)
    config = VitsConfig(
        model_args=args, audio=audio, use_phonemes=False, text_cleaner="multilingual_cleaners", **speaker_args,
    )
    model = Vits(config)  # coqui reads the speaker and language files while building
    torch.save(
        {"model": model.state_dict(), "config": config.to_dict(), "step": 0, "epoch": 0,
         "date": datetime.date.today().strftime("%B %d, %Y")},
        folder / "model_file.pth",
    )
    saved = config.to_dict()
    field = "speakers_file" if speaker_ids else "d_vector_file"
    moved = f"{foreign}/{speaker_file.name}"
    saved[field] = saved["model_args"][field] = moved if speaker_ids else [moved]
    saved["model_args"]["language_ids_file"] = "language_ids.json"  # relative: resolved against the cwd by coqui
    if encoder:
        saved["model_args"]["speaker_encoder_model_path"] = f"{foreign}/model_se.pth"
        saved["model_args"]["speaker_encoder_config_path"] = f"{foreign}/config_se.json"
    (folder / "config.json").write_text(json.dumps(saved, indent=2))
    return folder


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    folder = build_tiny_yourtts(tmp_path_factory.mktemp("yourtts") / "your_tts")
    (folder / "speaker_genders.json").write_text(json.dumps(GENDERS))
    return folder


@pytest.fixture(scope="module")
def voice(tiny_folder: Path) -> YourTTSVoice:
    return load_voice(str(tiny_folder))


def copy_without(src: Path, dst: Path, *missing: str) -> Path:
    shutil.copytree(src, dst)
    for name in missing:
        (dst / name).unlink()
    return dst


def longest_run(mask: np.ndarray) -> int:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


def test_loads_from_a_folder_and_speaks_16khz(voice: YourTTSVoice, tiny_folder: Path, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # the config's relative and foreign paths must not matter
    config_before = (tiny_folder / "config.json").read_text()
    assert isinstance(voice, YourTTSVoice) and voice.language == "en"
    assert {s.id: s.gender for s in voice.speakers()} == GENDERS
    began = time.perf_counter()
    speech = voice.synthesize("Hello there. How are you today?", speaker="p226")
    print(f"tiny VITS: {speech.duration:.2f} s of audio in {time.perf_counter() - began:.3f} s")
    assert speech.sample_rate == 16_000 and speech.audio.dtype == np.float32 and speech.audio.ndim == 1
    assert speech.audio.size > 1600 and np.abs(speech.audio).max() <= 1.0 and np.any(speech.audio != 0)
    assert speech.words == () and speech.phonemes == ()  # coqui gives no timings for VITS
    assert (tiny_folder / "config.json").read_text() == config_before  # the folder is never written to
    again = voice.synthesize("Hello there. How are you today?", speaker="p226")
    np.testing.assert_array_equal(speech.audio, again.audio)  # same text, same speaker, same audio


def test_speaker_chosen_by_gender(voice: YourTTSVoice) -> None:
    rng = np.random.default_rng(0)
    assert {choose_speaker(voice, "female", rng) for _ in range(40)} == {"p225", "p228"}
    assert {choose_speaker(voice, "male", rng) for _ in range(40)} == {"p226", "p227"}
    assert {choose_speaker(voice, None, rng) for _ in range(60)} == set(GENDERS)
    with pytest.raises(ValueError, match="unknown YourTTS speaker"):
        voice.synthesize("hi", speaker="p999")


def test_coqui_padding_is_trimmed(voice: YourTTSVoice) -> None:
    """coqui's Synthesizer.tts puts PAD_SILENCE_SAMPLES of exact zeros after every sentence; none survive."""
    from TTS.utils.synthesizer import PAD_SILENCE_SAMPLES

    text = "One sentence here. Another one follows! And a third?"
    raw = voice._synth.tts(text, speaker_name="p225", language_name="en", return_dict=True)
    raw_wav = np.asarray(raw["wav"], np.float32)
    assert len(raw["segments"]) == 3
    assert longest_run(raw_wav == 0) >= PAD_SILENCE_SAMPLES  # coqui's padding is there ...
    assert np.all(raw_wav[-PAD_SILENCE_SAMPLES:] == 0)  # ... including after the last sentence
    speech = voice.synthesize(text, speaker="p225")
    spoken = sum(s["end"] - s["start"] for s in raw["segments"])
    # ... and gone: what is left is the spoken part (trimmed to a margin) plus two sentence gaps
    assert speech.duration <= spoken + 2 * voice.sentence_gap_s + 0.01
    assert speech.duration >= 0.5 * spoken
    assert longest_run(np.abs(speech.audio) < 1e-7) <= int((voice.sentence_gap_s + 0.01) * 16_000)
    assert np.any(speech.audio[:800] != 0) and np.any(speech.audio[-800:] != 0)  # no silence at either end


def test_trim_silence_keeps_a_margin() -> None:
    rate = 16_000
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    padded = np.concatenate([np.zeros(rate // 2, np.float32), tone, np.zeros(rate, np.float32)])
    trimmed = trim_silence(padded, rate, margin_s=0.04)
    assert abs(trimmed.size - (rate + 2 * 640)) <= 2 * 160
    assert trim_silence(np.zeros(rate, np.float32), rate).size == 0


def test_split_padding_falls_back_to_silent_runs(caplog) -> None:
    a, b = np.ones(100, np.float32), np.full(50, 0.5, np.float32)
    pad = np.zeros(30, np.float32)
    wav = np.concatenate([a, pad, b, pad])
    exact = split_padding(wav, [{"start": 0, "end": 1.0}, {"start": 1.3, "end": 1.8}], rate=100, pad=30)
    assert [p.size for p in exact] == [100, 50]
    with caplog.at_level(logging.WARNING):
        guessed = split_padding(wav, [{"start": 0, "end": 0.7}], rate=100, pad=30)  # wrong segments
    assert [p.size for p in guessed] == [100, 50] and "not as expected" in caplog.text


def test_long_text_in_chunks(voice: YourTTSVoice, monkeypatch) -> None:
    calls: list[str] = []
    real = voice._synth.tts
    monkeypatch.setattr(voice._synth, "tts", lambda text, **kw: calls.append(text) or real(text, **kw))
    text = " ".join(f"Part {i} of a text that is long." for i in range(40))  # ~1,300 characters
    speech = voice.synthesize(text, speaker="p228")
    assert len(calls) == 40 and max(map(len, calls)) <= voice.max_chars
    assert speech.sample_rate == 16_000 and speech.duration > 39 * voice.sentence_gap_s


def test_nothing_to_say(voice: YourTTSVoice) -> None:
    assert voice.synthesize("\U0001f600 \u4f60\u597d").audio.size == 0


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("config.json", "config.json"),
        ("model_file.pth", "model_file.pth"),
        ("speakers.json", "speakers.json"),
        ("language_ids.json", "language_ids.json"),
    ],
)
def test_missing_file_is_named(tiny_folder: Path, tmp_path: Path, missing: str, named: str) -> None:
    folder = copy_without(tiny_folder, tmp_path / "incomplete", missing)
    with pytest.raises(MissingVoiceFile, match=named) as info:
        YourTTSVoice.from_folder(folder)
    assert info.value.missing == named and isinstance(info.value, FileNotFoundError)


def test_speaker_encoder_required_when_the_config_names_it(tiny_folder: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_folder, tmp_path / "with_encoder")
    config = json.loads((folder / "config.json").read_text())
    config["model_args"]["speaker_encoder_model_path"] = "/home/coqui/model_se.pth"
    config["model_args"]["speaker_encoder_config_path"] = "/home/coqui/config_se.json"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(MissingVoiceFile, match="model_se.pth"):
        YourTTSVoice.from_folder(folder)
    (folder / "model_se.pth").write_bytes(b"")
    with pytest.raises(MissingVoiceFile, match="config_se.json"):
        YourTTSVoice.from_folder(folder)


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="espeak"):
        load_voice(str(tmp_path / "nowhere"))
    with pytest.raises(MissingVoiceFile):
        YourTTSVoice.from_folder(tmp_path / "nowhere")


def test_bad_genders_table(tiny_folder: Path, tmp_path: Path) -> None:
    folder = copy_without(tiny_folder, tmp_path / "bad_genders")
    (folder / "speaker_genders.json").write_text(json.dumps({"p225": "woman"}))
    with pytest.raises(VoiceError, match="'female' or 'male'"):
        YourTTSVoice.from_folder(folder)


def test_genders_unknown_or_from_names(tiny_folder: Path, tmp_path: Path, caplog) -> None:
    """Without a table, genders come from coqui-style names ("female-en-5") or stay unknown."""
    plain = copy_without(tiny_folder, tmp_path / "plain", "speaker_genders.json")
    with caplog.at_level(logging.WARNING):
        voice = YourTTSVoice.from_folder(plain)
        assert all(s.gender is None for s in voice.speakers())
        assert choose_speaker(voice, "female", np.random.default_rng(0)) in GENDERS
    assert "genders unknown" in caplog.text and "does not know its speakers' genders" in caplog.text

    rng = np.random.default_rng(1)
    named = {n: rng.standard_normal(D_VECTOR_DIM).tolist() for n in ("female-en-5", "female-en-5\n", "male-en-2")}
    folder = build_tiny_yourtts(tmp_path / "named", speakers=named)
    voice = YourTTSVoice.from_folder(folder)
    assert {s.id: s.gender for s in voice.speakers()} == {"female-en-5": "female", "female-en-5~2": "female", "male-en-2": "male"}
    assert voice.synthesize("Hi.", speaker="female-en-5~2").audio.size > 0


def test_speaker_ids_model_with_a_speaker_encoder(tmp_path: Path, monkeypatch) -> None:
    """The other layout coqui uses: speaker_ids.json + an embedding table, and a speaker encoder."""
    folder = build_tiny_yourtts(tmp_path / "ids", speaker_ids=True, encoder=True)
    (folder / "speaker_genders.json").write_text(json.dumps(GENDERS))
    monkeypatch.chdir(tmp_path)
    voice = YourTTSVoice.from_folder(folder)
    assert voice._synth.tts_model.speaker_manager.encoder is not None  # coqui loaded model_se.pth
    speaker = choose_speaker(voice, "male", np.random.default_rng(0))
    assert GENDERS[speaker] == "male"
    speech = voice.synthesize("Testing, one two three.", speaker=speaker)
    assert speech.sample_rate == 16_000 and speech.audio.size > 0
    (folder / "speaker_ids.json").unlink()
    with pytest.raises(MissingVoiceFile, match="speaker_ids.json"):
        YourTTSVoice.from_folder(folder)
