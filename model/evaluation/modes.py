"""The input modes ``textcall eval`` renders (stdlib only: the CLI lists them for ``--help``)."""

MODES = ("caption+text", "text", "caption", "unconditional", "style+text")
