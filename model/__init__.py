"""textcall's generative side: networks, diffusion, voices, lip sync, corpora, training.

Importing ``model`` itself loads nothing (the ``textcall`` CLI imports its subcommand modules for
``--help``). ``model.clip`` holds the request/clip types and the ``Generator`` interface the receiver
talks to, and ``model.pipeline.load_generator`` is the one facade through which the receiver gets a
generator.
"""
