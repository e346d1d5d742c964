"""The joint audio-video diffusion model (paper sections III, IV-A..IV-D, V-A..V-C).

Pieces, each swappable and testable alone (k-diffusion's split):

- ``config``      frozen dataclasses: schedule, captions, what travels with the weights; ``paper`` and
                  ``small`` presets (the network's ``UNetConfig`` in ``unet_config``, the caption
                  vocabulary in ``captions``).
- ``av``          the ``AV(video, audio)`` pair; schedule math is written once and mapped over it.
- ``unet``        the double-branch U-Net: (2+1)D video blocks, dilated 1-D audio blocks, AdaGN,
                  cross-modal attention both ways (``layers``: single-tensor pieces; ``blocks``: the
                  two-branch layers, one forward with or without video; ``reference_encoder``).
- ``classifier``  the noisy joint video-audio classifier (U-Net encoder + pool + linear).
- ``schedule``    the linear beta schedule as tensors, and pure functions over it.
- ``sampling``    DDPM ancestral, DDIM, DPM-Solver++(2M): pure loops over ``(denoiser, x, steps)``.
- ``guidance``    ``denoiser -> denoiser`` wrappers: caption (conditional / classifier-free),
                  classifier guidance (Eq. 8), audio replacement + reconstruction guidance (Eq. 10-11).
- ``checkpoint``  ``model.safetensors`` + ``config.json``, EMA.
- ``train``       the resumable training loops (diffusion and classifier), DDP, AMP, loss curves.
- ``generate``    ``build_guidance`` (once per request, from a ``GuidanceConfig``) and ``generate_av``
                  (per chunk): the receiver's way into the model.

This ``__init__`` stays light: nothing here imports torch.
"""
