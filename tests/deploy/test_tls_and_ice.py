"""TLS for signaling (the receiver serves https itself) and ICE servers from flags to aiortc."""

from __future__ import annotations

import asyncio
import json

import pytest

from protocol.ice import IceConfigError, IceServer, ice_servers, load_ice_config
from receiver.config import ReceiverConfig
from receiver.serve import start
from sender.client import Sender, SenderConfig
from tests.deploy.certs import self_signed

TOKEN = "tls-test-token-012345"


async def test_sender_calls_a_receiver_over_https(tmp_path):
    cert, key = self_signed(tmp_path / "tls")
    rendered = asyncio.Queue()
    config = ReceiverConfig(tokens=frozenset({TOKEN}), out_dir=tmp_path / "out", port=0, loopback=True,
                            model="stub", tls_cert=cert, tls_key=key)
    runner, url = await start(config, sinks=[rendered.put_nowait])
    try:
        assert url.startswith("https://127.0.0.1:")
        sender = Sender(SenderConfig(receiver_url=url, token=TOKEN, sender_id="secure", tls_ca=cert, loopback=True))
        await sender.start()
        try:
            sender.say(text="over TLS")
            assert await sender.drain(30)
        finally:
            await sender.close()
        assert (await asyncio.wait_for(rendered.get(), 10)).request.text == "over TLS"

        # without trusting the certificate the sender refuses, and says why, without retrying forever
        doubtful = Sender(SenderConfig(receiver_url=url, token=TOKEN, sender_id="doubtful", loopback=True))
        await doubtful.start()
        try:
            doubtful.say(text="should not go")
            assert not await doubtful.drain(20)
            assert "not trusted" in str(doubtful.fatal) and "--tls-ca" in str(doubtful.fatal)
        finally:
            await doubtful.close()
    finally:
        await runner.cleanup()


async def test_bad_certificate_files_fail_fast(tmp_path):
    bogus = tmp_path / "cert.pem"
    bogus.write_text("not a certificate")
    config = ReceiverConfig(tokens=frozenset({TOKEN}), out_dir=tmp_path / "out", port=0, model="stub",
                            tls_cert=bogus, tls_key=bogus)
    with pytest.raises(ValueError, match="cannot use"):
        await start(config)
    with pytest.raises(ValueError, match="go together"):
        ReceiverConfig(tokens=frozenset({TOKEN}), tls_cert=bogus)


# ------------------------------------------------------------------------------------------ ICE


def test_ice_urls_and_credentials():
    servers = ice_servers(["stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp"],
                          username="user", credential="secret")
    assert servers[0] == IceServer(("stun:stun.example.org:3478",))  # STUN gets no credentials
    assert servers[1].username == "user" and servers[1].credential == "secret"
    assert "secret" not in repr(servers[1])


@pytest.mark.parametrize(
    "url,message",
    [
        ("http://example.org", "is not stun"),
        ("turn:turn.example.org", "needs a username"),
        ("stun:stun.example.org?transport=udp", "takes no"),
        ("turns:turn.example.org:5349?transport=udp", "tcp only"),
        ("stun:exa mple.org", "is not stun"),
    ],
)
def test_bad_ice_urls(url, message):
    with pytest.raises(IceConfigError, match=message):
        ice_servers([url])


def test_ice_config_file_shapes(tmp_path):
    path = tmp_path / "ice.json"
    path.write_text(json.dumps([{"urls": "turn:t.example.org:3478", "username": "u", "credential": "c"}]))
    assert load_ice_config(path)[0].urls == ("turn:t.example.org:3478",)
    path.write_text(json.dumps({"iceServers": [{"urls": ["stun:s.example.org"]}]}))
    assert load_ice_config(path)[0].urls == ("stun:s.example.org",)
    for bad, message in [("[", "not JSON"), ("{}", "expected a list"), ('[{"url": "x"}]', 'needs "urls"'),
                         ('[{"urls": "turn:t.example.org"}]', "server 0: TURN server")]:
        path.write_text(bad)
        with pytest.raises(IceConfigError, match=message):
            load_ice_config(path)


def _rtc_servers(configuration):
    return [(s.urls, s.username, s.credential) for s in configuration.iceServers]


def test_receiver_flags_reach_rtc_configuration(tmp_path, monkeypatch):
    """`textcall receive --ice-server ... --ice-config ...` ends up in the answer's RTCConfiguration."""
    import receiver.serve
    from protocol.rtc import rtc_configuration
    from sender.cli import main

    ice = tmp_path / "ice.json"
    ice.write_text(json.dumps([{"urls": "stun:s.example.org:3478"}]))
    seen = {}

    async def fake_serve(config, **kwargs):
        seen["config"] = config
        return 0

    monkeypatch.setattr(receiver.serve, "serve", fake_serve)
    code = main(["receive", "--model", "stub", "--token", TOKEN, "--out", str(tmp_path / "out"),
                 "--ice-server", "turn:t.example.org:3478?transport=tcp", "--ice-username", "alice",
                 "--ice-credential", "pw", "--ice-config", str(ice)])
    assert code == 0
    configuration = rtc_configuration(seen["config"].ice_servers)
    assert _rtc_servers(configuration) == [
        (["turn:t.example.org:3478?transport=tcp"], "alice", "pw"),
        (["stun:s.example.org:3478"], None, None),
    ]


async def test_receiver_answers_with_its_configured_ice_servers(tmp_path, monkeypatch):
    """The peer connection made for an offer gets exactly the configured servers."""
    import receiver.app

    made = []
    real = receiver.app.RTCPeerConnection
    monkeypatch.setattr(receiver.app, "RTCPeerConnection", lambda configuration: made.append(configuration)
                        or real(configuration))
    servers = (IceServer(("turn:127.0.0.1:9?transport=tcp",), "u", "p"),)
    config = ReceiverConfig(tokens=frozenset({TOKEN}), out_dir=tmp_path / "out", port=0, loopback=True,
                            model="stub", ice_servers=servers)
    runner, url = await start(config)
    try:
        from aiortc import RTCPeerConnection

        from sender.signaling import exchange_offer

        from protocol.rtc import loopback_only

        pc = RTCPeerConnection()
        pc.createDataChannel("textcall")
        loopback_only(pc)
        await pc.setLocalDescription(await pc.createOffer())
        await exchange_offer(url, TOKEN, pc.localDescription)
        await pc.close()
    finally:
        await runner.cleanup()
    assert _rtc_servers(made[0]) == [(["turn:127.0.0.1:9?transport=tcp"], "u", "p")]


def test_sender_flags_reach_rtc_configuration(tmp_path):
    from sender.app import SendOptions
    from sender.cli import build_parser
    from protocol.rtc import rtc_configuration

    args = build_parser().parse_args(
        ["send", "--token", TOKEN, "--receiver", "https://call.example.org", "--outbox", "none",
         "--ice-server", "stun:s.example.org", "--ice-server", "turn:t.example.org:3478",
         "--ice-username", "bob", "--ice-credential", "pw2", "--text", "hi"]
    )
    options = SendOptions.from_args(args)
    assert _rtc_servers(rtc_configuration(options.config.ice_servers)) == [
        (["stun:s.example.org"], None, None),
        (["turn:t.example.org:3478"], "bob", "pw2"),
    ]
