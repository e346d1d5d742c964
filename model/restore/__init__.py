"""The reference restorer: a call's face gives back the detail the joint model's frames lack.

The joint model (reference-conditioned) copies the call's person into every frame, but a small
network sampled in 10 steps draws them soft and mottled. The restorer is a feed-forward network
that takes each sampled frame (smoothed over time first, which removes the frame-to-frame flicker)
and the call's face, and returns the frame with the face's crisp detail: pose, expression and mouth
from the frame, hair, eyes, skin and clothes from the face. It is trained on corpus frames: the
target a real frame, its reference another clip of the same person, its input the real frame made
to look like the joint model's output (the joint model's own re-sampling of the clip, SDEdit-style,
and synthetic blur, noise and colour mottling). Not in the paper; it runs as the clean-up before lip
sync when a call has a face (``GeneratorSettings.postfilter``; ``--postfilter off`` skips it).
"""
