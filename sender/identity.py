"""The sender's secret: what proves its sender id to a receiver (``Hello.secret``), kept with its state.

The first Hello with a secret binds the id to it on a receiver; after that only this sender can use
the id there (``receiver/identities.py``). The secret lives in ``~/.local/state/textcall/secret-<id>``
(0600; ``XDG_STATE_HOME`` is honoured), made on first use, so a restarted sender (or ``textcall
demo`` run again) is still itself. Without a file (``--secret-file none``, or a ``SenderConfig``
without one) a secret is made once per process and sender id.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from protocol.codec import SECRET_BYTES

SIZE = 32
_PROCESS: dict[str, bytes] = {}


def state_dir() -> Path:
    """Where a sender keeps what it needs across runs (its outbox, its secret): ``~/.local/state/textcall``."""
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "textcall"


def default_secret_file(sender_id: str) -> Path:
    return state_dir() / f"secret-{sender_id}"


def process_secret(sender_id: str) -> bytes:
    """This process's secret for ``sender_id`` (made on first use, never written)."""
    return _PROCESS.setdefault(sender_id, secrets.token_bytes(SIZE))


def load_secret(path: Path) -> bytes:
    """The secret in ``path``, made (0600, in a 0700 folder) when there is none yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = secrets.token_bytes(SIZE)
        tmp = path.with_name(path.name + ".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        try:
            os.link(tmp, path)  # never replaces a secret another process made meanwhile
        except FileExistsError:
            data = path.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)
    if not SECRET_BYTES[0] <= len(data) <= SECRET_BYTES[1]:
        raise ValueError(f"{path} is not a textcall sender secret ({len(data)} bytes; delete it to make a new one, "
                         "which a receiver that knows the old one will refuse)")
    return data
