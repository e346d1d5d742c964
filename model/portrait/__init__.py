"""The portrait model: a still-image sibling of the joint diffusion model that draws a call's face.

A call shows one person. When the sender gives no style image, the receiver samples that person's
face once per call from this model (caption -> 64x64 portrait), and the reference-conditioned joint
model then copies it into every frame of every utterance (``model/call.py``). A still costs a
sixteenth of a one-second clip per denoising step, so this model trains far longer on a CPU than the
joint model can, and the one face per call may be sampled with many more steps.
"""
