"""Counts what a session cost on the wire against the media it produced."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path



@dataclass
class BitrateMeter:
    """Per session: payload bytes (protobuf frames) and wire bytes (DTLS level: SCTP chunks, DTLS
    records and handshake included, ICE/UDP headers not), against seconds of generated media."""

    session_id: str
    started: float = field(default_factory=time.monotonic)
    payload_bytes_received: int = 0
    payload_bytes_sent: int = 0
    messages_received: int = 0
    messages_sent: int = 0
    wire_bytes_received: int = 0
    wire_bytes_sent: int = 0
    media_seconds: float = 0.0
    clips: int = 0
    utterance_payload_bytes: int = 0
    # wire bytes when the first message (Hello) arrived: ICE/DTLS handshake, SCTP association and
    # the channel's DCEP open. A one-off cost, reported apart from the steady-state rate.
    setup_wire_bytes_received: int | None = None
    setup_wire_bytes_sent: int | None = None

    def received(self, frame_bytes: int, *, utterance: bool = False) -> None:
        self.payload_bytes_received += frame_bytes
        self.messages_received += 1
        if utterance:
            self.utterance_payload_bytes += frame_bytes

    def sent(self, frame_bytes: int) -> None:
        self.payload_bytes_sent += frame_bytes
        self.messages_sent += 1

    def wire(self, sent: int, received: int) -> None:
        """Latest DTLS transport counters (cumulative for the connection)."""
        self.wire_bytes_sent = max(self.wire_bytes_sent, sent)
        self.wire_bytes_received = max(self.wire_bytes_received, received)

    def mark_setup(self) -> None:
        if self.setup_wire_bytes_received is None:
            self.setup_wire_bytes_received = self.wire_bytes_received
            self.setup_wire_bytes_sent = self.wire_bytes_sent

    def rendered(self, seconds: float) -> None:
        self.media_seconds += seconds
        self.clips += 1

    def report(self) -> dict:
        media = self.media_seconds
        per_media = (lambda n: round(8 * n / media, 2)) if media > 0 else (lambda n: None)
        return {
            **asdict(self),
            "wall_seconds": round(time.monotonic() - self.started, 3),
            "media_seconds": round(media, 3),
            "bits_per_media_second": {
                "utterance_payload": per_media(self.utterance_payload_bytes),
                "payload_in": per_media(self.payload_bytes_received),
                "payload_both_ways": per_media(self.payload_bytes_received + self.payload_bytes_sent),
                "wire_in": per_media(self.wire_bytes_received),
                "wire_both_ways": per_media(self.wire_bytes_received + self.wire_bytes_sent),
                "wire_in_after_setup": per_media(self.wire_bytes_received - (self.setup_wire_bytes_received or 0)),
                "wire_out_after_setup": per_media(self.wire_bytes_sent - (self.setup_wire_bytes_sent or 0)),
            },
        }

    def summary(self) -> str:
        report = self.report()["bits_per_media_second"]
        if self.media_seconds <= 0:
            return f"session {self.session_id}: no media rendered"
        return (
            f"session {self.session_id}: {self.clips} clips, {self.media_seconds:.1f} s of media; "
            f"sender->receiver {self.payload_bytes_received} B payload / {self.wire_bytes_received} B "
            f"wire = {report['payload_in']} / {report['wire_in']} bit/s of media"
        )

    def write(self, path: Path) -> None:
        """``bitrate.json`` at ``path``. Reports are built from it outside the receiver
        (``textcall report SESSION_FOLDER``; the demo does it for its session)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(), indent=2) + "\n", encoding="utf-8")
