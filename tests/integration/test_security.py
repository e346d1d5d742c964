"""Who gets in and how much they may do: per-sender tokens, constant-time checks, peer and rate
limits, and the warning when the receiver listens on a public address."""

from __future__ import annotations

import asyncio
import hmac
import json

import aiohttp
import pytest

from protocol import codec
from protocol.codec import Code
from receiver.tokens import Identity, TokenFileError, authenticate, load_sender_tokens
from tests.integration.conftest import TOKEN
from tests.integration.processes import Process, free_port, textcall_command, wait_healthy

ANNA = "anna-token-0123456789"
BEN = "ben-token-9876543210"


# ------------------------------------------------------------------------------------ tokens file


def test_tokens_file_lines_and_json(tmp_path):
    lines = tmp_path / "tokens.txt"
    lines.write_text(f"# who may call\nanna {ANNA}\n\n  ben   {BEN}  \n")
    assert load_sender_tokens(lines) == ((ANNA, "anna"), (BEN, "ben"))
    as_json = tmp_path / "tokens.json"
    as_json.write_text(json.dumps({"anna": ANNA, "ben": BEN}))
    assert load_sender_tokens(as_json) == ((ANNA, "anna"), (BEN, "ben"))


@pytest.mark.parametrize(
    "text,message",
    [
        (f"anna {ANNA} extra\n", ":1: expected 'sender_id token'"),
        ("anna short\n", "shorter than 8"),
        (f"anna {ANNA}\nanna {BEN}\n", ":2: anna or its token is listed twice"),
        (f"anna {ANNA}\nben {ANNA}\n", "listed twice"),
        (f"an/na {ANNA}\n", "sender id"),
        ("# nobody\n", "lists no senders"),
        ('{"anna": ', "not valid JSON"),
        ('{"anna": 5}', "expected"),
    ],
)
def test_bad_tokens_files_are_refused_with_the_line(tmp_path, text, message):
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(TokenFileError, match=message.replace("(", r"\(")):
        load_sender_tokens(path)


def test_missing_tokens_file(tmp_path):
    with pytest.raises(TokenFileError, match="cannot read"):
        load_sender_tokens(tmp_path / "absent")


def test_generated_tokens_survive_a_command_line(monkeypatch):
    """One urlsafe token in 64 starts with "-", which `--token T` reads as an option: the demo and
    the report, which pass their generated token to a sender process, failed that often."""
    import secrets

    from receiver.tokens import new_token
    from sender.cli import build_parser

    drawn = iter(["-starts-with-a-dash-xyz", "fine_token_0123456789"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    assert new_token() == "fine_token_0123456789"
    monkeypatch.undo()
    assert all(not new_token().startswith("-") for _ in range(500))
    args = build_parser().parse_args(["send", "--receiver", "http://127.0.0.1:1", "--token=-dash-first-token"])
    assert args.token == "-dash-first-token"


def test_authenticate():
    shared = frozenset({TOKEN})
    pairs = ((ANNA, "anna"),)
    assert authenticate(f"Bearer {TOKEN}", shared, pairs) == Identity(None)
    assert authenticate(f"bearer {ANNA}", shared, pairs) == Identity("anna")
    for header in ("", "Bearer", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x", f"Bearer {ANNA[:-1]}"):
        assert authenticate(header, shared, pairs) is None, header


def test_every_token_is_compared_whichever_matches(monkeypatch):
    """No early exit: the number of constant-time comparisons does not depend on the token."""
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    shared = frozenset({TOKEN, "other-token-1234"})
    pairs = ((ANNA, "anna"), (BEN, "ben"))
    counts = set()
    for presented in (TOKEN, ANNA, BEN, "wrong-token-0000"):
        calls.clear()
        authenticate(f"Bearer {presented}", shared, pairs)
        counts.add(len(calls))
    assert counts == {4}


# ------------------------------------------------------------------------------- live receivers


async def test_per_sender_token_names_the_sender(make_receiver, make_sender, raw_peer):
    receiver = await make_receiver(sender_tokens=((ANNA, "anna"),))
    from sender.client import Sender, SenderConfig

    anna = Sender(SenderConfig(receiver_url=receiver.url, token=ANNA, sender_id="anna"))
    await anna.start()
    try:
        anna.say(text="it is me")
        assert await anna.drain(30)
    finally:
        await anna.close()
    rendered = await asyncio.wait_for(receiver.rendered.get(), 10)
    assert rendered.sender_id == "anna"


async def test_per_sender_token_cannot_claim_another_sender(make_receiver):
    from tests.integration.conftest import RawPeer

    receiver = await make_receiver(sender_tokens=((ANNA, "anna"),))
    peer = RawPeer()
    try:
        await peer.connect(receiver.url, token=ANNA)
        peer.send(codec.encode(codec.hello("ben")))
        error = (await peer.next("error")).error
        assert error.code == Code.UNEXPECTED and "belongs to sender 'anna'" in error.reason
        peer.send(codec.encode(codec.utterance(1, text="as ben")))
        assert (await peer.next("error")).error.code == Code.UNEXPECTED  # still no Hello accepted
    finally:
        await peer.close()
    assert receiver.rendered.empty()


async def test_receiver_full_answers_503_and_creates_no_session(make_receiver, raw_peer):
    receiver = await make_receiver(max_peers=1)
    await raw_peer(receiver)
    from tests.integration.conftest import RawPeer

    extra = RawPeer()
    try:
        await extra.pc.setLocalDescription(await extra.pc.createOffer())
        offer = {"sdp": extra.pc.localDescription.sdp, "type": "offer"}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                receiver.url + "/offer", json=offer, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as response:
                assert response.status == 503
                assert "full" in await response.text()
    finally:
        await extra.close()
    assert len(receiver.sessions()) == 1


async def test_utterances_over_the_rate_are_refused(make_receiver, raw_peer):
    receiver = await make_receiver(max_utterances_per_second=1.0, queue_size=2)
    peer = await raw_peer(receiver)
    peer.send(codec.encode(codec.hello("hasty")))
    await peer.next("welcome")
    for seq in range(1, 6):
        peer.send(codec.encode(codec.utterance(seq, text=f"quick {seq}")))
    error = (await peer.next("error")).error
    assert error.code in (Code.RATE_LIMITED, Code.QUEUE_FULL) and error.reason
    assert error.HasField("seq")


# ---------------------------------------------------------------------------- binding address


def _receiver_output(tmp_path, host: str) -> str:
    port = free_port()
    process = Process(
        textcall_command("receive", "--model", "stub", "--host", host, "--port", str(port),
                         "--token", TOKEN, "--out", str(tmp_path / "out")),
        tmp_path / f"receiver-{host}.log",
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        process.stop()
    return process.output()


def test_loopback_by_default_and_a_warning_when_public(tmp_path):
    quiet = _receiver_output(tmp_path, "127.0.0.1")
    assert "WARNING" not in quiet and "http://127.0.0.1:" in quiet
    loud = _receiver_output(tmp_path, "0.0.0.0")
    assert "WARNING: listening on a public address 0.0.0.0" in loud
    assert "WITHOUT TLS" in loud


def test_default_host_is_loopback():
    from sender.cli import build_parser

    args = build_parser().parse_args(["receive"])
    assert args.host == "127.0.0.1"


async def test_oversized_chunked_body_is_refused_without_a_session(receiver):
    """No Content-Length to trust: the body is cut off at the limit while it is read."""

    async def body():
        for _ in range(20):
            yield b"x" * 8192

    async with aiohttp.ClientSession() as http:
        async with http.post(
            receiver.url + "/offer", data=body(), headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            assert response.status == 413
            assert "larger than" in await response.text()
    assert receiver.sessions() == {}
