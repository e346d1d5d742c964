"""Loading the talking head's networks and voice from a weights folder (``TalkingHead.from_weights``)."""

from __future__ import annotations

import logging
from pathlib import Path

from model.defaults import GeneratorSettings

logger = logging.getLogger(__name__)


def load_components(folder: str | Path, device: str, settings: GeneratorSettings) -> dict:
    """``folder/{diffusion,classifier,autoguide,lipsync,portrait,restore,upscale,captions}`` (all but the first
    optional) and the voice, as ``TalkingHead`` keyword arguments. ``upscale`` is loaded unless
    ``settings.size`` is the joint model's own. ``autoguide`` is loaded only when
    ``settings.audio_guidance`` is not 1; ``portrait`` and ``restore`` only for ``settings.face == "call"``
    (``restore`` with ``settings.postfilter``); ``lipsync`` only with ``settings.lipsync`` (and its ``mouth``
    sharpener with ``settings.mouth``); ``gender`` (the
    face-gender judge, which picks the voice of a style picture no caption names) only with lip sync,
    since without it no style picture is animated."""
    from model.diffusion.checkpoint import load_model
    from model.diffusion.config import check_autoguide, check_classifier
    from model.speech import load_voice

    folder = Path(folder)
    if not (folder / "diffusion" / "config.json").is_file():
        raise FileNotFoundError(f"{folder / 'diffusion'} holds no diffusion model (config.json + model.safetensors)")
    diffusion, config = load_model(folder / "diffusion", device)
    sources = {"diffusion": str(folder / "diffusion")}
    classifier = None
    if (folder / "classifier" / "config.json").is_file():
        classifier, cconfig = load_model(folder / "classifier", device)
        check_classifier(config, cconfig)
        sources["classifier"] = str(folder / "classifier")
    audio_guide = None
    if settings.audio_guidance != 1.0 and (folder / "autoguide" / "config.json").is_file():
        audio_guide, gconfig = load_model(folder / "autoguide", device)
        check_autoguide(config, gconfig)
        sources["autoguide"] = str(folder / "autoguide")
    lipsync = None
    if settings.lipsync and (folder / "lipsync" / "config.json").is_file():
        from model.lipsync import LipSync

        lipsync = LipSync.load(folder / "lipsync", device=device)
        sources["lipsync"] = str(folder / "lipsync")
        if settings.mouth and (folder / "mouth" / "config.json").is_file():  # used on frames larger than its crop
            from model.restore.mouth import MouthSharpener

            lipsync.mouth = MouthSharpener.load(folder / "mouth", device)
            sources["mouth"] = str(folder / "mouth")
        elif settings.mouth:
            logger.warning("--mouth on, but %s holds no mouth sharpener: lip sync's own mouth is shown", folder / "mouth")
    portrait = restorer = None
    if settings.face == "call" and (folder / "portrait" / "config.json").is_file():
        from model.portrait.sample import PortraitModel

        portrait = PortraitModel.load(folder / "portrait", device)
        sources["portrait"] = str(folder / "portrait")
    if settings.face == "call" and settings.postfilter and (folder / "restore" / "config.json").is_file():
        from model.restore.restorer import Restorer

        restorer = Restorer.load(folder / "restore", device)
        sources["restore"] = str(folder / "restore")
    upscaler = None
    if settings.size != config.unet.image_size and (folder / "upscale" / "config.json").is_file():
        from model.restore.restorer import Restorer

        upscaler = Restorer.load(folder / "upscale", device)
        sources["upscale"] = str(folder / "upscale")
    captions = None
    if (folder / "captions" / "config.json").is_file():
        from model.describe.encoder import CaptionEncoder

        captions = CaptionEncoder.load(folder / "captions")
        sources["captions"] = str(folder / "captions")
    gender_judge = None
    if lipsync is not None and (folder / "gender" / "config.json").is_file():  # style pictures' voices
        from model.evaluation.gender import GenderClassifier

        gender_judge = GenderClassifier.load(folder / "gender", device)
        sources["gender"] = str(folder / "gender")
    voice = load_voice(settings.voice, device=device)
    sources["voice"] = settings.voice
    return {"diffusion": diffusion, "config": config, "voice": voice, "lipsync": lipsync, "classifier": classifier,
            "audio_guide": audio_guide, "portrait": portrait, "restorer": restorer, "upscaler": upscaler, "captions": captions,
            "gender_judge": gender_judge, "sources": sources}
