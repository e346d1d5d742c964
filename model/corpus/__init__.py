"""Talking-head corpora: GRID as distributed, and a synthetic GRID-layout corpus with ground truth.

- ``synth``: ``textcall corpus synth`` writes speakers that talk (espeak-ng voices, drawn faces whose
  lips follow the phonemes) in GRID's on-disk layout.
- ``grid``: reads any GRID-layout corpus, crops faces, cuts the paper's one-second segments.
- ``cache``: the segments, ready for training (``SegmentCache``).
- ``sync``: measures how well mouth and sound agree.

See ``model/corpus/README.md``.
"""
