"""Talking-head corpora: GRID as distributed, and a synthetic GRID-layout corpus with ground truth.

- ``synth``: ``textcall corpus synth`` writes speakers that talk (espeak-ng voices, drawn faces whose
  lips follow the phonemes) in GRID's on-disk layout.
- ``grid``: reads any GRID-layout corpus, crops faces, cuts the paper's one-second segments.
- ``cache``: the segments, ready for training (``SegmentCache``).
- ``sync``: measures how well mouth and sound agree.

See ``model/corpus/README.md``.
"""

# How the corpus tools start their worker processes. Not "fork": a worker forked from a process that
# already runs threads (torch's, ONNX Runtime's, FFmpeg's) can inherit a lock held by one of them and
# wait on it forever; a fresh-clone test run once hung so inside PyAV's decoder (``media._read_frames``)
# in a forked ``prepare`` worker. A fork server is a clean single-threaded process the workers fork from.
POOL_START = "forkserver"
