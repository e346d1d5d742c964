"""The receiver's settings, built once in the CLI and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model import GeneratorSettings
from protocol.codec import DEFAULT_LIMITS, Limits
from protocol.ice import IceServer

MAX_OFFER_BYTES = 64 * 1024


@dataclass(frozen=True)
class ReceiverConfig:
    tokens: frozenset[str]
    out_dir: Path = Path("textcall-out")
    host: str = "127.0.0.1"
    port: int = 8765
    model: str = "stub"
    device: str = "cpu"
    generator_settings: GeneratorSettings | None = None  # None: the generator's own (the stub takes none)
    record: bool = True
    play: bool = False
    gallery_dir: Path | None = None
    ice_servers: tuple[IceServer, ...] = ()
    loopback: bool = False
    max_peers: int = 16
    queue_size: int = 8
    max_utterances_per_second: float = 20.0
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    # (token, sender id) pairs from --tokens FILE: a session opened with such a token is that sender
    sender_tokens: tuple[tuple[str, str], ...] = ()
    tls_cert: Path | None = None  # PEM certificate (chain) and key: serve https:// instead of http://
    tls_key: Path | None = None
    viewer: bool = False  # serve the browser viewer (/view) to holders of a token
    # a connection must deliver each request head within this many seconds of opening or of its last
    # response (aiohttp's keep-alive timer, which also runs before the first request); offer bodies too
    request_timeout: float = 10.0

    def __post_init__(self) -> None:
        every = list(self.tokens) + [token for token, _ in self.sender_tokens]
        if not every or any(len(token) < 8 for token in every):
            raise ValueError("at least one token of 8 or more characters is required")
        if len(set(every)) != len(every):
            raise ValueError("the same token is given twice (each per-sender token must be unique)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")
        if self.queue_size < 1 or self.max_peers < 1:
            raise ValueError("queue_size and max_peers must be at least 1")
        if self.max_utterances_per_second <= 0:
            raise ValueError("max_utterances_per_second must be positive")
        if self.request_timeout <= 0:
            raise ValueError("request_timeout must be positive")
        if self.viewer and not self.record:
            raise ValueError("the viewer plays the recorded MP4s: --viewer needs recording on")
