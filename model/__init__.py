"""textcall's generative side: networks, diffusion, voices, lip sync, corpora, training.

This top-level module stays light (numpy only): ``model.clip`` holds the request/clip types and the
``Generator`` interface the receiver talks to, and ``model.pipeline.load_generator`` is the one
facade through which the receiver gets a generator. torch is imported only by the modules that need it.
"""

from model.clip import Clip, Generator, Request

__all__ = ["Clip", "Generator", "Request"]
