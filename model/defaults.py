"""The default generator's sampling settings, in one place.

``TalkingHeadSettings`` and the ``receive``/``demo``, ``eval`` and ``sample`` parsers read them.
Importing this module loads nothing: the ``textcall`` CLI registers those parsers for ``--help``
without torch.
"""

# The samplers by name; model.diffusion.sampling.SAMPLERS maps the same names to code (a test
# keeps the two equal). Here so that parsers list them without importing torch.
SAMPLERS = ("dpm++", "ddim", "ddpm")
SAMPLER = "dpm++"
STEPS = 10  # DPM-Solver++(2M) evaluations; the paper's path is ddpm with 1000
# Autoguidance weight for audio made without speech text (1 = off). Picked on probes with seeds the
# eval does not use: README, "How speech-like".
AUDIO_GUIDANCE = 3.0
# Non-local-means clean-up of the sampled frames before lip sync (model/postfilter.py; not in the paper).
POSTFILTER = True
