"""`textcall receive` / `demo` / `eval` turn their generation flags into one validated GeneratorSettings."""

from __future__ import annotations

import pytest

from model import GeneratorSettings, defaults
from receiver.cli import _generator_settings
from sender.cli import build_parser


@pytest.mark.parametrize("command", ["receive", "demo"])
def test_generation_flags_become_settings(command) -> None:
    args = build_parser().parse_args([command, "--steps", "4", "--audio-guidance", "1", "--audio-contrast", "0",
                                      "--postfilter", "off", "--face", "paper", "--face-sampler", "dpm++", "--face-steps", "20", "--face-cfg", "2", "--precision", "fp32",
                                      "--head-motion", "off"])
    assert _generator_settings(args) == GeneratorSettings(
        sampler="dpm++", steps=4, voice=defaults.VOICE, audio_guidance=1.0, audio_contrast=0.0, postfilter=False,
        face="paper", face_sampler="dpm++", face_steps=20, face_cfg=2.0, precision="fp32", head_motion=False)
    default = _generator_settings(build_parser().parse_args([command]))
    assert default == GeneratorSettings()  # the flags' defaults are the settings' defaults
    assert default.audio_guidance == 3.0 and default.postfilter and default.head_motion
    assert _generator_settings(build_parser().parse_args([command, "--model", "stub"])) is None


def test_bad_generation_flags_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="audio-guidance"):
        _generator_settings(build_parser().parse_args(["receive", "--audio-guidance", "-2"]))
    with pytest.raises(ValueError, match="steps"):
        _generator_settings(build_parser().parse_args(["receive", "--steps", "0"]))
    with pytest.raises(ValueError, match="audio-contrast"):
        _generator_settings(build_parser().parse_args(["demo", "--audio-contrast", "-0.1"]))
    with pytest.raises(ValueError, match="face-steps"):
        _generator_settings(build_parser().parse_args(["receive", "--face-steps", "0"]))
    with pytest.raises(ValueError, match="ddpm takes all 1000 steps"):  # refused at start, not on every utterance
        _generator_settings(build_parser().parse_args(["receive", "--sampler", "ddpm"]))
    assert _generator_settings(build_parser().parse_args(["receive", "--sampler", "ddpm", "--steps", "1000"])).steps == 1000
    with pytest.raises(ValueError, match="precision"):
        GeneratorSettings(precision="fp8")


def test_eval_takes_the_same_generation_flags() -> None:
    from model import defaults

    args = build_parser().parse_args(["eval", "model", "--audio-contrast", "0.2", "--postfilter", "off", "--voice", "mixed"])
    assert defaults.generation_settings(args) == GeneratorSettings(audio_contrast=0.2, postfilter=False, voice="mixed")


@pytest.mark.parametrize("argv", [["receive"], ["demo"], ["eval", "model"], ["sample"]])
def test_every_parser_defaults_to_the_generators_settings(argv) -> None:
    """One source for the defaults (model/defaults.py): the CLIs sample as the generator does."""
    from model.talking_head import TalkingHeadSettings

    args = build_parser().parse_args(argv)
    settings = TalkingHeadSettings()
    assert args.audio_guidance == settings.audio_guidance and args.sampler == settings.sampler
    assert args.audio_contrast == settings.audio_contrast
    if argv[0] != "sample":  # sample is the raw model's tool: no clean-up, no lip sync
        assert (args.postfilter == "on") == settings.postfilter
        assert (args.head_motion == "on") == settings.head_motion
    if argv[0] != "sample":  # sample keeps the sampler's own step default (20 for dpm++)
        assert args.steps == settings.steps
        assert (args.face, args.face_sampler, args.face_steps, args.face_cfg, args.precision) == (
            settings.face, settings.face_sampler, settings.face_steps, settings.face_cfg, settings.precision)


def test_the_light_sampler_names_are_the_samplers() -> None:
    """The parsers offer ``defaults.SAMPLERS`` (no torch); every name must be a sampler and back."""
    from model import defaults
    from model.diffusion.sampling import SAMPLERS

    assert set(defaults.SAMPLERS) == set(SAMPLERS) and defaults.SAMPLER in SAMPLERS
