"""Writing a generated chunk as MP4 for ``textcall sample`` (through ``model.media``)."""

from model.media import write_mp4

__all__ = ["write_mp4"]
