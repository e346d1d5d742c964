"""Signaling over HTTP: each bad request gets the right status and creates no session."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.integration.conftest import TOKEN

GOOD_HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SDP_WITHOUT_DATA = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    "headers,body,status",
    [
        ({}, {"sdp": "x", "type": "offer"}, 401),
        ({"Authorization": "Bearer wrong-token-0000"}, {"sdp": "x", "type": "offer"}, 401),
        ({"Authorization": TOKEN}, {"sdp": "x", "type": "offer"}, 401),
        (GOOD_HEADERS, "{not json", 400),
        (GOOD_HEADERS, {"sdp": "x"}, 400),
        (GOOD_HEADERS, {"sdp": "x", "type": "answer"}, 400),
        (GOOD_HEADERS, ["sdp", "offer"], 400),
        (GOOD_HEADERS, {"sdp": "this is not SDP", "type": "offer"}, 400),
        (GOOD_HEADERS, {"sdp": SDP_WITHOUT_DATA, "type": "offer"}, 400),
        (GOOD_HEADERS, {"sdp": "v=0\r\n" + "a=x\r\n" * 20000, "type": "offer"}, 413),
        (GOOD_HEADERS, "[" * 30000 + "]" * 30000, 400),  # 60 KB of nesting: a RecursionError in json
    ],
    ids=["no token", "wrong token", "no scheme", "malformed json", "no type", "an answer",
         "json list", "malformed sdp", "no data channel", "oversized body", "nested json"],
)
async def test_bad_offer(receiver, headers, body, status):
    data = body if isinstance(body, str) else json.dumps(body)
    async with aiohttp.ClientSession() as http:
        async with http.post(receiver.url + "/offer", data=data, headers=headers) as response:
            assert response.status == status
            assert (await response.text()).strip()
    assert receiver.sessions() == {}


async def test_health(receiver):
    async with aiohttp.ClientSession() as http:
        async with http.get(receiver.url + "/health") as response:
            assert response.status == 200
            assert (await response.json())["model"] == "stub"


async def _connect(url: str):
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def test_half_sent_requests_are_dropped_not_held(make_receiver):
    """Issue 28: unauthenticated half-sent requests were held for ever (1,000 for 60 s)."""
    import asyncio

    receiver = await make_receiver(request_timeout=0.5)
    held = [await _connect(receiver.url) for _ in range(20)]
    for n, (_, writer) in enumerate(held):
        writer.write(b"POST /offer HTTP/1.1\r\nHost: x\r\n" if n % 2 else b"")  # half a head, or nothing
    for reader, writer in held:
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the receiver closed it (held: a TimeoutError)
        writer.close()
    # a complete request on a fresh connection is still answered
    async with aiohttp.ClientSession() as http:
        async with http.get(receiver.url + "/health") as response:
            assert response.status == 200


async def test_an_offer_body_trickled_in_is_cut_off(make_receiver):
    import asyncio

    receiver = await make_receiver(request_timeout=0.5)
    reader, writer = await _connect(receiver.url)
    writer.write(f"POST /offer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.readline(), 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    writer.close()
    assert receiver.sessions() == {}
