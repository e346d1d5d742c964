"""``textcall eval captions``: do faces drawn from free-form captions show what the captions say?

Held-out captions (``model.describe.wording``: sentence frames and attribute combinations the
caption encoder never saw, people drawn uniformly over attribute values) go through the receiver's
own path: the caption encoder reads each, the portrait model draws one face from the reading (the
receiver's face sampler and steps, at each classifier-free guidance scale asked for), and the
attribute judge looks at the face. Adherence per attribute = the share of faces asked for a value
of it that the judge sees with that value; it is scored against what the caption *states*, so
the encoder's misreadings count against it. Beside it: the judge's own accuracy on real drawn
people (held-out judge stills and the video corpus's test frames), the ceiling a perfect generator
would reach under this judge. The paper's two captions and an empty caption are drawn too.

``JointFaces`` puts the joint audio-video model in the portrait model's place (``--generator joint``):
one chunk from the reading with no reference face and no speech (the paper's caption-only path, with
classifier-free guidance on the description, or classifier guidance), its middle frame judged. That
measures what the joint model itself learnt of descriptions; in a call it copies the call's face.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.describe.attributes import ATTRIBUTES, BAR_ATTRIBUTES, said, text_of

logger = logging.getLogger(__name__)
BAR = 0.90


@dataclass(frozen=True)
class CaptionEvalConfig:
    captions: int = 60
    cfg_scales: tuple[float, ...] = (1.0, 3.0)
    sampler: str = "ancestral"
    steps: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.captions < 1 or self.steps < 1 or not self.cfg_scales:
            raise ValueError("captions and steps must be positive and at least one guidance scale given")


class JointFaces:
    """The joint model as a face source for ``run_caption_eval``: ``sample(vector, seed, sampler,
    steps, cfg_scale)`` -> uint8 ``[1, H, W, 3]``, the middle frame of one caption-only chunk (no
    reference, no speech, no clean-up). With a ``classifier`` (and ``classifier_scale`` > 0) the
    network gets the null caption and the classifier guides by the description (Eq. 8) instead."""

    def __init__(self, diffusion, config, *, classifier=None, classifier_scale: float = 0.0,
                 sampler: str = "dpm++", steps: int = 20) -> None:
        self.diffusion, self.config = diffusion, config
        self.classifier, self.classifier_scale = classifier, classifier_scale
        self.sampler, self.steps = sampler, steps

    @classmethod
    def load(cls, folder, classifier_folder=None, **kwargs) -> "JointFaces":
        from model.diffusion.checkpoint import load_model
        from model.diffusion.config import ClassifierConfig, DiffusionConfig

        diffusion, config = load_model(folder)
        if not isinstance(config, DiffusionConfig):
            raise ValueError(f"{folder} holds no joint diffusion model")
        classifier = None
        if classifier_folder is not None:
            classifier, clf_config = load_model(classifier_folder)
            if not isinstance(clf_config, ClassifierConfig):
                raise ValueError(f"{classifier_folder} holds no classifier")
        return cls(diffusion, config, classifier=classifier, **kwargs)

    def sample(self, vec, seed: int, sampler: str | None = None, steps: int | None = None, cfg_scale: float = 1.0):
        from model.describe.attributes import description_of
        from model.diffusion.generate import GuidanceConfig, build_guidance, generate_av

        use_classifier = self.classifier is not None and self.classifier_scale > 0
        guidance = GuidanceConfig(cfg_scale=cfg_scale, classifier_scale=self.classifier_scale)
        stack = build_guidance(self.diffusion, self.config, guidance=guidance, caption=said(description_of(vec)),
                               classifier=self.classifier if use_classifier else None)
        video, _ = generate_av(stack, seed=seed, sampler=sampler or self.sampler, steps=steps or self.steps)
        return video[len(video) // 2][None]


def heldout_captions(count: int, seed: int) -> list[tuple[str, dict]]:
    """``count`` held-out captions, each stating at least one of the bar's attributes."""
    from model.describe.wording import caption_corpus, random_people

    people = random_people(20_000, 10_000 + seed)
    out: list[tuple[str, dict]] = []
    for text, description in caption_corpus(people, count * 4, 20_000 + seed, "heldout"):
        if any(description.get(k) is not None for k in BAR_ATTRIBUTES):
            out.append((text, description))
        if len(out) == count:
            break
    return out


def run_caption_eval(portrait, encoder, judge, out: str | Path, config: CaptionEvalConfig = CaptionEvalConfig(),
                     progress: bool = True) -> dict:
    from tqdm.auto import tqdm

    from model.describe.attributes import vector
    from model.describe.judge import adherence
    from model.media import image_grid

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    captions = heldout_captions(config.captions, config.seed)
    readings = encoder.read([t for t, _ in captions])
    read_exact = float(np.mean([r.description == d for r, (_, d) in zip(readings, captions)]))
    report: dict = {"config": {**config.__dict__, "cfg_scales": list(config.cfg_scales)},
                    "generator": _generator_info(portrait),
                    "captions": len(captions), "encoder_read_exactly": round(read_exact, 4),
                    "judge": judge.meta.get("metrics", {}), "by_cfg": {}}
    t0 = time.perf_counter()
    for cfg in config.cfg_scales:
        faces = []
        for k, reading in enumerate(tqdm(readings, desc=f"faces (guidance {cfg:g})", disable=not progress)):
            faces.append(portrait.sample(vector(reading.description), seed=config.seed * 1000 + k, sampler=config.sampler,
                                         steps=config.steps, cfg_scale=cfg)[0])
        faces_arr = np.stack(faces)
        judged = judge.predict(faces_arr)
        result = adherence(judged, [d for _, d in captions])
        report["by_cfg"][f"{cfg:g}"] = result
        labels = [f"{k}: " + ", ".join(f"{a}={v}" for a, v in said(d).items() if a in BAR_ATTRIBUTES) for k, (_, d) in enumerate(captions)]
        image_grid(faces_arr, out / f"faces_cfg{cfg:g}.png", columns=6, scale=3, labels=labels)
    report["seconds_per_face"] = round((time.perf_counter() - t0) / (len(captions) * len(config.cfg_scales)), 3)
    # the paper's two captions and no caption: they must still draw (and the two, their gender)
    plain = []
    for k, text in enumerate(("A man is talking", "A woman is talking", "")):
        reading = encoder.read(text)
        face = portrait.sample(vector(reading.description), seed=500 + k, sampler=config.sampler, steps=config.steps,
                               cfg_scale=config.cfg_scales[-1])[0]
        plain.append({"caption": text, "read": reading.said(), "judged_gender": judge.predict(face[None])[0]["gender"]})
    report["plain_captions"] = plain
    (out / "captions.txt").write_text("\n".join(f"{k}: {t}  ->  read {text_of(r.description)}" for k, ((t, _), r) in
                                                enumerate(zip(captions, readings))) + "\n")
    (out / "eval.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "eval.md").write_text(markdown(report))
    return report


def _generator_info(faces) -> dict:
    if isinstance(faces, JointFaces):
        return {"kind": "joint", "name": faces.config.name, "describes": faces.config.unet.describes,
                "sampler": f"{faces.sampler}-{faces.steps}",
                "classifier_scale": faces.classifier_scale if faces.classifier is not None else 0.0}
    return {"kind": "portrait"}


def markdown(report: dict) -> str:
    judge = report.get("judge", {})
    held, corpus = judge.get("heldout_accuracy", {}), judge.get("corpus_accuracy", {})
    scales = list(report["by_cfg"])
    clf = report.get("generator", {}).get("classifier_scale")  # then the network has the null caption: no CFG
    head = "| attribute | " + " | ".join(f"adherence, classifier guidance {clf:g} (asked)" if clf else
                                         f"adherence, guidance {s} (asked)" for s in scales) + \
        " | judge on held-out real people | judge on corpus test frames | bar |"
    generator = report.get("generator", {"kind": "portrait"})
    drawn = "the portrait model (the call's face)" if generator["kind"] == "portrait" else (
        f"the joint model `{generator['name']}` ({'description vector' if generator['describes'] else 'caption index: gender only'}, "
        f"no reference, no speech, {generator['sampler']}"
        + (f", classifier guidance {generator['classifier_scale']:g}" if generator.get("classifier_scale") else "") + "), middle frame")
    lines = [f"# Free-form captions: {report['captions']} held-out captions (new wordings, new combinations)", "",
             f"Drawn by {drawn}.", "",
             f"Caption encoder read {report['encoder_read_exactly']:.3f} of them exactly; "
             f"{report['seconds_per_face']} s per face.", "", head, "|" + "---|" * (4 + len(scales))]
    for a in ATTRIBUTES:
        cells = []
        for s in scales:
            r = report["by_cfg"][s].get(a.name)
            cells.append(f"{r['adherence']:.3f} ({r['asked']})" if r else "-")
        bar = f">= {BAR:.2f}" if a.name in BAR_ATTRIBUTES else "(reported)"
        lines.append(f"| {a.name} | " + " | ".join(cells) + f" | {held.get(a.name, float('nan')):.3f} | "
                     f"{corpus.get(a.name, float('nan')):.3f} | {bar} |")
    lines += ["", "The paper's captions and none: " + "; ".join(
        f"{p['caption']!r} -> read {p['read'] or 'nothing'}, judged {p['judged_gender']}" for p in report["plain_captions"]), ""]
    return "\n".join(lines)
