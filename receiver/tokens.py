"""Per-sender tokens (``textcall receive --tokens FILE``) and the bearer-token check.

A tokens file names who may connect and with which token; a session opened with a token from it is
that sender, whatever its ``Hello`` would like to claim. Two formats:

    # one "sender_id token" per line; blank lines and '#' comments are ignored
    laptop-anna   6Qk0...long random token...
    laptop-ben    pZ9c...

or JSON, ``{"laptop-anna": "6Qk0...", "laptop-ben": "pZ9c..."}``.

Tokens are compared in constant time against every accepted token, so the time a refusal takes says
nothing about which token, or how much of one, matched.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from protocol.codec import ProtocolError, _check_id

logger = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 8


def new_token() -> str:
    """A random bearer token (144 bits, URL-safe) that never starts with "-", so ``--token T``
    on a command line is never read as an option (one urlsafe token in 64 starts with "-")."""
    while True:
        token = secrets.token_urlsafe(18)
        if not token.startswith("-"):
            return token


class TokenFileError(ValueError):
    """A tokens file that cannot be used; the message names the file and line."""


def load_sender_tokens(path: Path) -> tuple[tuple[str, str], ...]:
    """``(token, sender_id)`` pairs from ``path`` (see the module docstring for the formats)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise TokenFileError(f"cannot read tokens file {path}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning("tokens file %s is readable by other users (chmod 600 it)", path)
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise TokenFileError(f"tokens file {path} is not valid JSON: {exc}") from exc
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise TokenFileError(f'tokens file {path}: expected {{"sender_id": "token", ...}}')
        entries = [(index, sender, token) for index, (sender, token) in enumerate(data.items(), 1)]
    else:
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise TokenFileError(f"{path}:{number}: expected 'sender_id token', got {len(parts)} fields")
            entries.append((number, parts[0], parts[1]))
    pairs: list[tuple[str, str]] = []
    seen_tokens: set[str] = set()
    seen_senders: set[str] = set()
    for where, sender, token in entries:
        try:
            _check_id(sender, "sender id")
        except ProtocolError as exc:
            raise TokenFileError(f"{path}:{where}: {exc.reason}") from None
        if len(token) < MIN_TOKEN_CHARS:
            raise TokenFileError(f"{path}:{where}: the token of {sender} is shorter than {MIN_TOKEN_CHARS}")
        if token in seen_tokens or sender in seen_senders:
            raise TokenFileError(f"{path}:{where}: {sender} or its token is listed twice")
        seen_tokens.add(token)
        seen_senders.add(sender)
        pairs.append((token, sender))
    if not pairs:
        raise TokenFileError(f"tokens file {path} lists no senders")
    return tuple(pairs)


@dataclass(frozen=True)
class Identity:
    """Who presented a valid token: ``sender_id`` is set when the token belongs to one sender."""

    sender_id: str | None


def authenticate(
    header: str, tokens: frozenset[str], sender_tokens: tuple[tuple[str, str], ...] = ()
) -> Identity | None:
    """Check an ``Authorization: Bearer <token>`` header; None when it is missing or wrong."""
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return None
    given = presented.strip().encode()
    # Every accepted token is compared (no early exit), each comparison in constant time.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.encode())
    bound: str | None = None
    for token, sender in sender_tokens:
        if hmac.compare_digest(given, token.encode()):
            bound = sender
    if bound is not None:
        return Identity(bound)
    return Identity(None) if matched else None
