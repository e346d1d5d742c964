"""STUN/TURN servers both peers are told about: parsed and checked once, here (stdlib only).

Both ``textcall send`` and ``textcall receive`` take the same options, so they share this parser:

- ``--ice-server URL`` (repeatable): ``stun:host:3478``, ``turn:host:3478?transport=udp``,
  ``turns:host:5349?transport=tcp``;
- ``--ice-username`` / ``--ice-credential`` (or ``TEXTCALL_ICE_USERNAME`` / ``TEXTCALL_ICE_CREDENTIAL``):
  the TURN credentials given to every ``turn:``/``turns:`` URL on the command line;
- ``--ice-config FILE``: JSON in the browser's ``RTCConfiguration`` shape, either a list of servers or
  ``{"iceServers": [...]}``, each ``{"urls": "turn:..." | [...], "username": ..., "credential": ...}``.

aiortc turns an :class:`IceServer` into ``RTCIceServer(urls, username, credential)``. aiortc 1.16
uses only the first STUN URL and the first TURN URL of the whole list (``turn:`` over udp or tcp,
``turns:`` over tcp); :func:`ice_servers` warns when more are given.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

_URL = re.compile(r"(stuns?|turns?):(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(\?transport=(udp|tcp))?")


logger = logging.getLogger(__name__)


class IceConfigError(ValueError):
    """An ICE server description that cannot be used."""


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if not self.urls:
            raise IceConfigError("an ICE server needs at least one URL")
        for url in self.urls:
            match = _URL.fullmatch(url)
            if not match:
                raise IceConfigError(
                    f"ICE server URL {url!r} is not stun:HOST[:PORT] or turn(s):HOST[:PORT][?transport=udp|tcp]"
                )
            scheme, transport = match.group(1), match.group(5)
            if scheme.startswith("stun") and transport:
                raise IceConfigError(f"ICE server URL {url!r}: a STUN URL takes no ?transport")
            if scheme == "turns" and transport == "udp":
                raise IceConfigError(f"ICE server URL {url!r}: turns: (TURN over TLS) runs over tcp only")
        if self.is_turn and not (self.username and self.credential):
            raise IceConfigError(f"TURN server {self.urls[0]} needs a username and a credential")

    @property
    def is_turn(self) -> bool:
        return any(url.startswith("turn") for url in self.urls)

    def __repr__(self) -> str:  # never print the credential
        secret = ", credential=***" if self.credential else ""
        return f"IceServer(urls={self.urls!r}, username={self.username!r}{secret})"


def ice_servers(
    urls: list[str] | tuple[str, ...] = (),
    *,
    username: str | None = None,
    credential: str | None = None,
    config_file: Path | None = None,
) -> tuple[IceServer, ...]:
    """The servers from command-line URLs (credentials go to the TURN ones) and a JSON file."""
    servers: list[IceServer] = []
    for url in urls:
        turn = url.split(":", 1)[0] in ("turn", "turns")
        servers.append(IceServer((url,), username if turn else None, credential if turn else None))
    if config_file is not None:
        servers.extend(load_ice_config(config_file))
    for kind in ("stun", "turn"):
        found = [url for server in servers for url in server.urls if url.startswith(kind)]
        if len(found) > 1:
            logger.warning("aiortc uses only the first %s URL (%s); ignoring %s", kind.upper(), found[0],
                           ", ".join(found[1:]))
    return tuple(servers)


def load_ice_config(path: Path) -> tuple[IceServer, ...]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise IceConfigError(f"cannot read ICE config {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise IceConfigError(f"ICE config {path} is not JSON: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("iceServers")
    if not isinstance(data, list):
        raise IceConfigError(f'ICE config {path}: expected a list of servers or {{"iceServers": [...]}}')
    servers = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict) or "urls" not in entry:
            raise IceConfigError(f'ICE config {path}: server {index} needs "urls"')
        urls = entry["urls"]
        urls = (urls,) if isinstance(urls, str) else urls
        username, credential = entry.get("username"), entry.get("credential")
        if not isinstance(urls, (list, tuple)) or not all(isinstance(u, str) for u in urls):
            raise IceConfigError(f"ICE config {path}: server {index}: urls must be a string or a list of strings")
        if not all(v is None or isinstance(v, str) for v in (username, credential)):
            raise IceConfigError(f"ICE config {path}: server {index}: username and credential must be strings")
        try:
            servers.append(IceServer(tuple(urls), username, credential))
        except IceConfigError as exc:
            raise IceConfigError(f"ICE config {path}: server {index}: {exc}") from None
    return tuple(servers)


def add_ice_flags(parser, *, who: str) -> None:
    """The ICE options ``textcall send`` and ``textcall receive`` share (``who``: "sender" or
    "receiver", for the help text)."""
    parser.add_argument("--ice-server", action="append", metavar="URL",
                        help=f"STUN/TURN server the {who} gathers candidates through (repeatable), e.g.\n"
                        "stun:stun.example.org:3478 or turn:turn.example.org:3478?transport=udp\n"
                        "(TURN needs --ice-username/--ice-credential)")
    parser.add_argument("--ice-username", default=os.environ.get("TEXTCALL_ICE_USERNAME"),
                        help="TURN username for the --ice-server turn: URLs (env TEXTCALL_ICE_USERNAME)")
    parser.add_argument("--ice-credential", default=os.environ.get("TEXTCALL_ICE_CREDENTIAL"),
                        help="TURN password for the --ice-server turn: URLs (env TEXTCALL_ICE_CREDENTIAL)")
    parser.add_argument("--ice-config", type=Path, metavar="FILE",
                        help='JSON ICE servers: [{"urls": ..., "username": ..., "credential": ...}] or\n'
                        '{"iceServers": [...]}')


def ice_servers_from_args(args) -> tuple[IceServer, ...]:
    """``add_ice_flags``' values as servers (IceConfigError names what is wrong)."""
    return ice_servers(args.ice_server or (), username=args.ice_username, credential=args.ice_credential,
                       config_file=args.ice_config)
