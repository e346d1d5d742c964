"""Benchmark: what hostile style uploads cost a receiver (issue 28): memory, and other sessions' latency.

    python tests/benchmarks/bench_uploads.py [--partial 100] [--big 12] [--pings 200]

One receiver (stub generator, recording on, loopback) in this process; raw aiortc peers. Printed:

- ``baseline``: a bystander session's ping round trips (p50, p99) and the receiver's RSS, idle;
- ``partial uploads``: ``--partial`` style uploads announced at the 4 MiB cap, each sent up to its
  last chunk and never finished, spread over 16 sessions (4 per session); RSS before, after, and
  after those sessions closed; how many the receiver refused (per-session and all-sessions budgets);
- ``16-Mpixel uploads``: while another session uploads ``--big`` 4096x4096 PNGs (small files, a
  full decode each), the bystander's ping round trips.

Numbers are printed (and written to ``bench-uploads.json``), never asserted. RSS is this whole
process: the receiver and the raw peers (client side) together. The bar in issue 28:
memory bounded under 100 partial uploads; the bystander's ping p99 < 50 ms during 16-Mpixel uploads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from protocol import codec  # noqa: E402
from protocol import textcall_pb2 as pb  # noqa: E402
from receiver.app import UPLOADS  # noqa: E402
from receiver.config import ReceiverConfig  # noqa: E402
from receiver.serve import start  # noqa: E402
from tests.integration.conftest import RawPeer  # noqa: E402

TOKEN = "bench-token-123456"
CHUNK = 32 * 1024
CAP = 4 * 1024 * 1024


def rss_mib() -> float:
    """Resident memory now (from /proc), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def hello(peer: RawPeer, sender: str) -> None:
    peer.send(codec.encode(codec.hello(sender, secret=sender.encode().ljust(16, b"-"))))
    await peer.next("welcome")


async def pings(peer: RawPeer, count: int, interval: float = 0.02) -> list[float]:
    """Round trips of ``count`` pings, ms (other replies are skipped)."""
    rtts = []
    for n in range(count):
        sent = time.perf_counter()
        peer.send(codec.encode(codec.ping(n)))
        while True:
            envelope = await peer.next(timeout=30)
            if envelope.WhichOneof("body") == "pong" and envelope.pong.nonce == n:
                break
        rtts.append((time.perf_counter() - sent) * 1000)
        await asyncio.sleep(interval)
    return rtts


def quantiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(0.99 * len(values)))]


async def partial_uploads(url: str, total: int) -> tuple[list[RawPeer], dict]:
    peers, refused = [], {"session": 0, "receiver": 0}
    per_session = 4
    for s in range((total + per_session - 1) // per_session):
        peer = RawPeer()
        await peer.connect(url, TOKEN)
        await hello(peer, f"uploader{s}")
        peers.append(peer)
    data = bytes(CHUNK)
    count = CAP // CHUNK
    for k in range(total):
        peer = peers[k // per_session]
        for index in range(count - 1):  # everything but the last chunk
            peer.send(pb.Envelope(style_image=pb.StyleImage(id=f"p{k}", chunk_index=index, chunk_count=count,
                                                            total_bytes=CAP, data=data)).SerializeToString())
            if index % 16 == 15:
                await asyncio.sleep(0.15)  # under the receiver's 128 chunks/s
    await asyncio.sleep(2.0)
    for peer in peers:
        while not peer.inbox.empty():
            envelope = peer.inbox.get_nowait()
            if envelope.WhichOneof("body") == "error" and "the most a session" in envelope.error.reason:
                refused["session"] += 1
            elif envelope.WhichOneof("body") == "error" and "all its senders" in envelope.error.reason:
                refused["receiver"] += 1
    return peers, refused


def big_png() -> bytes:
    import cv2
    import numpy as np

    image = np.full((4096, 4096, 3), 200, np.uint8)
    image[::64] = 10
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    return data.tobytes()


async def main(args) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-uploads-"))
    config = ReceiverConfig(tokens=frozenset({TOKEN}), out_dir=folder / "out", port=0, loopback=True, max_peers=64)
    runner, url = await start(config)
    rows = []
    try:
        bystander = RawPeer()
        await bystander.connect(url, TOKEN)
        await hello(bystander, "bystander")
        await pings(bystander, 20)  # warm up
        p50, p99 = quantiles(await pings(bystander, args.pings))
        rows.append({"scenario": "baseline (idle)", "rss_mib": round(rss_mib(), 1), "ping_p50_ms": round(p50, 1),
                     "ping_p99_ms": round(p99, 1)})

        before = rss_mib()
        peers, refused = await partial_uploads(url, args.partial)
        after = rss_mib()
        budget_mib = runner.app[UPLOADS].partial_bytes >> 20  # announced bytes the receiver holds now
        for peer in peers:
            await peer.close()
        await asyncio.sleep(3.0)
        closed = rss_mib()
        rows.append({"scenario": f"{args.partial} partial 4 MiB uploads ({len(peers)} sessions)", "rss_before_mib": round(before, 1),
                     "rss_after_mib": round(after, 1), "rss_after_close_mib": round(closed, 1),
                     "refused_session_cap": refused["session"], "refused_receiver_cap": refused["receiver"], "held_partial_mib": budget_mib})

        png = big_png()
        uploader = RawPeer()
        await uploader.connect(url, TOKEN)
        await hello(uploader, "bigimages")

        async def upload_all() -> None:
            for k in range(args.big):
                for chunk in codec.style_image_chunks(f"big{k}", png):
                    uploader.send(codec.encode(chunk))
                await asyncio.sleep(0.3)

        task = asyncio.get_running_loop().create_task(upload_all())
        rtts = await pings(bystander, args.pings)
        await task
        p50, p99 = quantiles(rtts)
        rows.append({"scenario": f"{args.big} uploads of 4096x4096 PNGs ({len(png) // 1024} KB each)",
                     "ping_p50_ms": round(p50, 1), "ping_p99_ms": round(p99, 1), "rss_mib": round(rss_mib(), 1)})
        await uploader.close()
        await bystander.close()
    finally:
        await runner.cleanup()
    for row in rows:
        print(" | ".join(f"{k}: {v}" for k, v in row.items()))
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partial", type=int, default=100)
    parser.add_argument("--big", type=int, default=12)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--out", default="bench-uploads.json")
    asyncio.run(main(parser.parse_args()))
