"""Sender ids bound to the secret their sender keeps, so a peer with the shared token cannot take one over.

Trust on first use: the first ``Hello`` that carries a secret (``Hello.secret``, 16-64 random bytes the
sender keeps with its state) binds its sender id to it; the receiver keeps only the SHA-256, in
``OUT/senders.json`` (0600, written atomically) so the binding survives a restart. A later ``Hello``
for that id must carry the same secret. An id with no secret bound may be used without one (a
browser, an older client), but such a ``Hello`` may not replace a live, connected session of the id:
it could be anyone. Per-sender tokens (``--tokens``) prove the id by themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

SENDERS_FILE = "senders.json"


class SenderKeys:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._keys: dict[str, str] = {}  # sender id -> sha256 hex of its secret
        if path is not None and path.exists():
            try:
                self._keys = {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, TypeError, AttributeError):
                # refusing every bound sender would lock them all out; binding anew is the lesser harm
                logger.error("sender keys %s are unreadable; ids are bound again by their next Hello", path)

    def bound(self, sender_id: str) -> bool:
        return sender_id in self._keys

    def check(self, sender_id: str, secret: bytes) -> str | None:
        """None when this Hello may use ``sender_id`` (binding it when it brings the first secret);
        otherwise why not."""
        known = self._keys.get(sender_id)
        if known is None:
            if secret:
                self._keys[sender_id] = hashlib.sha256(secret).hexdigest()
                self._save()
                logger.info("sender %s: id bound to its secret", sender_id)
            return None
        if not secret:
            return (f"sender id {sender_id!r} is bound to its sender's secret on this receiver; "
                    "this Hello carries none (use another id, or the sender's own state)")
        if not hmac.compare_digest(hashlib.sha256(secret).hexdigest(), known):
            return (f"sender id {sender_id!r} belongs to another sender on this receiver "
                    "(its secret does not match); use another id")
        return None

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self._keys, out, sort_keys=True)
        os.replace(tmp, self._path)
