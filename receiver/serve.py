"""Running the receiver app until interrupted."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from receiver.app import GENERATOR, make_app
from receiver.config import ReceiverConfig
from receiver.ice import use_loopback_candidates

logger = logging.getLogger(__name__)


async def start(config: ReceiverConfig, **app_kwargs) -> tuple[web.AppRunner, str]:
    """Start the app; returns the runner and the URL it listens on (port 0 picks a free port)."""
    if config.loopback:
        use_loopback_candidates()
    app = make_app(config, **app_kwargs)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    return runner, f"http://{host}:{port}"


async def serve(config: ReceiverConfig, *, show_token: str | None = None) -> int:
    try:
        runner, url = await start(config)
    except OSError as exc:
        print(f"textcall receive: cannot listen on {config.host}:{config.port}: {exc}")
        return 2
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"WARNING: listening publicly on {config.host}:{config.port}; anyone who has the token "
              "can connect. Put TLS in front of it (see deploy/README.md).")
    generator = runner.app[GENERATOR]
    print(f"textcall receiver on {url} (model {generator.name}); recordings in {config.out_dir}")
    if show_token:
        print(f"token (generated for this run): {show_token}")
        print(f"  textcall send --receiver {url} --token {show_token}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await stop.wait()
    finally:
        print("shutting down")
        await runner.cleanup()
    return 0
