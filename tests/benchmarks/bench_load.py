"""Load benchmark: many senders at once against one receiver with the stub generator, on loopback.

    python tests/benchmarks/bench_load.py [--senders 16] [--utterances 50] [--out DIR]

The receiver is a real ``textcall receive --model stub --loopback`` process (so its memory is its
own); the senders are ``Sender`` objects (outbox, window, heartbeats: the same code as
``textcall send``) on one event loop in this process. Every sender queues all its utterances at once,
so the receiver's window holds them back. The script prints:

- lost: utterances that never got a rendered ack, or never appear in the receiver's session
  journals; duplicated: utterances rendered (journalled) more than once. The bar is 0 and 0.
- ack latency p50/p99: from ``say()`` to the rendered ack, so it includes the wait for the window
  and the queue behind the other senders (one generation thread serves them all); arrival->clip is
  the receiver's own ``render_ms`` (from an utterance's arrival to its recorded clip);
- receiver peak RSS (VmHWM) and RSS sampled at the start, middle and end of the run (flat = bounded);
- wall time and clips per second.

Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sender.client import Refused, Rendered, Sender, SenderConfig  # noqa: E402
from tests.integration.processes import free_port, rendered_events, start_receiver  # noqa: E402

TOKEN = "bench-token-0123456789"


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="textcall-load-"))
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    extra = ["--max-peers", str(max(16, args.senders)), "--max-rate", "1000"]
    receiver = start_receiver(out / "receiver", port, TOKEN, *extra, log=out / "receiver.log")
    rss_samples = [rss_kib(receiver.pid)]
    senders: list[Sender] = []
    said_at: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    receiver_ms: list[int] = []  # arrival at the receiver -> clip recorded (its queue included)
    acked: collections.Counter[tuple[str, int]] = collections.Counter()
    refused: list[tuple[str, Refused]] = []
    total = args.senders * args.utterances
    bar = tqdm(total=total, unit="clip", desc="rendered")

    async def listen(sender: Sender) -> None:
        name = sender.config.sender_id
        while True:
            event = await sender.events.get()
            if isinstance(event, Rendered):
                key = (name, event.seq)
                acked[key] += 1
                if key in said_at and acked[key] == 1:
                    latencies.append(time.monotonic() - said_at[key])
                    if not event.duplicate:
                        receiver_ms.append(event.render_ms)
                    bar.update(1)
            elif isinstance(event, Refused):
                refused.append((name, event))

    started = time.monotonic()
    listeners = []
    try:
        for index in range(args.senders):
            sender = Sender(
                SenderConfig(
                    receiver_url=f"http://127.0.0.1:{port}",
                    token=TOKEN,
                    sender_id=f"load-{index:02d}",
                    loopback=True,
                    outbox_path=out / "outboxes" / f"load-{index:02d}.jsonl",
                )
            )
            senders.append(sender)
            listeners.append(asyncio.get_running_loop().create_task(listen(sender)))
            await sender.start()
        for sender in senders:
            for n in range(args.utterances):
                item = sender.say(text=f"{sender.config.sender_id} says line {n + 1}, a short sentence.")
                said_at[(sender.config.sender_id, item.seq)] = time.monotonic()
        deadline = time.monotonic() + args.timeout
        while len(latencies) < total and time.monotonic() < deadline and not refused:
            await asyncio.sleep(0.5)
            rss_samples.append(rss_kib(receiver.pid))
        drained = all([await s.drain(5) for s in senders])
    finally:
        wall = time.monotonic() - started
        bar.close()
        peak = rss_kib(receiver.pid, "VmHWM") if receiver.alive() else 0
        for sender in senders:
            await sender.close()
        for task in listeners:
            task.cancel()
        receiver.stop()

    journal = collections.Counter((e.sender_id, e.seq) for e in rendered_events(out / "receiver"))
    expected = {(s.config.sender_id, seq) for s in senders for seq in range(1, args.utterances + 1)}
    lost = sorted(k for k in expected if acked[k] == 0 or journal[k] == 0)
    duplicated = sorted(k for k, n in journal.items() if n > 1)
    rows = [
        ("senders x utterances", f"{args.senders} x {args.utterances} = {total}"),
        ("rendered (journal)", f"{sum(1 for k in expected if journal[k])}"),
        ("lost", f"{len(lost)}"),
        ("duplicated", f"{len(duplicated)}"),
        ("refused", f"{len(refused)}"),
        ("ack latency p50", f"{percentile(latencies, 50):.2f} s"),
        ("ack latency p99", f"{percentile(latencies, 99):.2f} s"),
        ("ack latency max", f"{max(latencies, default=float('nan')):.2f} s"),
        ("arrival->clip p50/p99", f"{percentile(receiver_ms, 50) / 1000:.2f} / {percentile(receiver_ms, 99) / 1000:.2f} s"),
        ("receiver peak RSS", f"{peak / 1024:.0f} MiB"),
        ("receiver RSS start/mid/end", " / ".join(
            f"{rss_samples[i] / 1024:.0f}" for i in (0, len(rss_samples) // 2, -1)) + " MiB"),
        ("wall time", f"{wall:.1f} s"),
        ("throughput", f"{len(latencies) / wall:.1f} clips/s"),
        ("recordings", f"{out / 'receiver'}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if lost:
        print(f"lost: {lost[:10]}{' ...' if len(lost) > 10 else ''}")
    if duplicated:
        print(f"duplicated: {duplicated[:10]}")
    for name, event in refused[:5]:
        print(f"refused {name} #{event.seq}: {event.code} {event.reason}")
    ok = drained and not lost and not duplicated
    print("bar (0 lost, 0 duplicated):", "met" if ok else "NOT met")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--utterances", type=int, default=50)
    parser.add_argument("--out", help="folder for the receiver's recordings and logs (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
