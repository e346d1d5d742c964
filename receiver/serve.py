"""Running the receiver app until interrupted."""

from __future__ import annotations

import asyncio
import logging
import ipaddress
import signal
import ssl
import sys
from urllib.parse import quote

from aiohttp import web

from receiver.app import GENERATOR, make_app
from receiver.config import ReceiverConfig

logger = logging.getLogger(__name__)


async def start(config: ReceiverConfig, **app_kwargs) -> tuple[web.AppRunner, str]:
    """Start the app; returns the runner and the URL it listens on (port 0 picks a free port)."""
    app = make_app(config, **app_kwargs)
    context = tls_context(config)  # before anything listens: a bad certificate fails fast
    # keepalive_timeout: aiohttp runs this timer from the moment a connection opens and after every
    # response, and closes a connection still without a complete request head when it fires, so a
    # half-sent request (anyone can open the port) is dropped after request_timeout, not held (3630 s
    # by default)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, keepalive_timeout=config.request_timeout)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = site._server.sockets[0].getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    return runner, f"{'https' if context else 'http'}://{host}:{port}"


def tls_context(config: ReceiverConfig) -> ssl.SSLContext | None:
    """An https server context from ``--tls-cert``/``--tls-key`` (PEM), or None for plain http."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use {config.tls_cert} / {config.tls_key} for TLS: {exc}") from exc
    return context


def is_public(host: str) -> bool:
    """True unless ``host`` is a loopback name or address (0.0.0.0 and :: listen on every interface)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a host name: whatever it resolves to, assume others can reach it


def viewer_url(url: str, token: str | None = None) -> str:
    """The browser viewer's address; with ``token`` the page takes it once and drops it from the URL."""
    return f"{url}/view" + (f"?token={quote(token, safe='')}" if token else "")


async def serve(config: ReceiverConfig, *, show_token: str | None = None) -> int:
    try:
        runner, url = await start(config)
    except OSError as exc:
        print(f"textcall receive: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"textcall receive: {exc}", file=sys.stderr)
        return 2
    if is_public(config.host):
        tls = "over TLS" if config.tls_cert else "WITHOUT TLS: tokens and SDP cross the network in clear text"
        print(f"WARNING: listening on a public address {config.host}:{config.port} {tls}. Anyone who "
              "can reach this port may try tokens; see deploy/README.md (TLS proxy or --tls-cert/--tls-key, "
              "per-sender --tokens, firewall).", file=sys.stderr)
    generator = runner.app[GENERATOR]
    print(f"textcall receiver on {url} (model {generator.name}); recordings in {config.out_dir}")
    if show_token:
        print(f"token (generated for this run): {show_token}")
        print(f"  textcall send --receiver {url} --token={show_token}")
    if config.viewer:
        print(f"viewer: {viewer_url(url, show_token)}" + ("" if show_token else " (asks for a token)"))
    try:
        await until_interrupted()
    finally:
        print("shutting down")
        await runner.cleanup()
    return 0


async def until_interrupted() -> None:
    """Return on the first SIGINT or SIGTERM (Ctrl-C, ``kill``), with the handlers removed again
    so a second Ctrl-C during shutdown still ends the process."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on Windows' loop, nor off the main thread
            pass
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass
