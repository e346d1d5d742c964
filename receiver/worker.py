"""All generation happens here: one thread per device, never on the event loop."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)


class GenerationWorker:
    """A single thread that runs generation jobs in submission order (one GPU = one worker)."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"textcall-gen-{device}")
        self._closed = False

    async def run(self, fn: Callable[..., T], *args) -> T:
        if self._closed:
            raise RuntimeError("generation worker is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=False, cancel_futures=True)
