"""deploy/ checked without Docker: the files parse, reference what exists, and the commands they run
work here, outside a container, with the same command line and environment (only what cannot exist
on a test machine is swapped: the model becomes the stub, cuda becomes cpu, container paths become
temporary files, the port a free one)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from sender.cli import build_parser
from tests.deploy.certs import self_signed
from tests.integration.processes import ROOT, Process, child_env, free_port, wait_healthy

yaml = pytest.importorskip("yaml", reason="PyYAML (dev extra) reads compose.yaml")

DEPLOY = ROOT / "deploy"
TOKEN = "deploy-test-token-0123"
# files the user writes from the shipped examples (deploy/README.md says how)
USER_FILES = {"tokens.txt": "tokens.example.txt", ".env": "env.example"}


# ------------------------------------------------------------------------------------ helpers


def dockerfile(name: str) -> dict:
    """The instructions of a Dockerfile (continuations joined): ENV as a dict, the rest as lists."""
    text = (DEPLOY / name).read_text()
    joined = re.sub(r"\\\n", " ", text)
    parsed: dict = {"ENV": {}, "COPY": [], "RUN": [], "FROM": [], "USER": [], "HEALTHCHECK": []}
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                parsed["ENV"][key] = value
        elif keyword in ("ENTRYPOINT", "CMD"):
            parsed[keyword] = json.loads(rest)  # exec form only: no shell in between
        else:
            parsed.setdefault(keyword, []).append(rest.strip())
    return parsed


def container_env(env: dict[str, str]) -> dict[str, str]:
    """The Dockerfile's ENV applied here; PATH keeps this venv in front (its textcall is the same code)."""
    out = child_env()
    for key, value in env.items():
        if key in ("PATH", "VIRTUAL_ENV"):
            continue
        out[key] = value
    out["PATH"] = str(Path(sys.executable).parent) + os.pathsep + out.get("PATH", "")
    return out


def swap(argv: list[str], replacements: dict[str, str]) -> list[str]:
    """Replace the value after each flag in ``replacements`` (``--model default`` -> ``--model stub``)."""
    out = list(argv)
    for index, word in enumerate(out[:-1]):
        if word in replacements:
            out[index + 1] = replacements[word]
    return out


def receive_help() -> str:
    return build_parser()._subparsers._group_actions[0].choices["receive"].format_help()


def flags(argv: list[str]) -> list[str]:
    return [word.split("=")[0] for word in argv if word.startswith("--")]


def example_env() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:?message} and ${VAR:-default}."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if op == ":-":
            return arg
        raise KeyError(f"{name} is not set ({arg})")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[?-])([^}]*))?\}", one, text)


# ------------------------------------------------------------------------------------ compose


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_parses_and_runs_receiver_turn_and_tls_proxy(compose):
    assert set(compose["services"]) == {"receiver", "turn", "proxy"}
    assert "coturn" in compose["services"]["turn"]["image"]
    assert "caddy" in compose["services"]["proxy"]["image"]
    receiver = compose["services"]["receiver"]
    build = receiver["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "receiver.Dockerfile"
    devices = receiver["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_compose_references_existing_files(compose):
    missing = []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                if not (DEPLOY / source).exists():
                    missing.append(source)
    for secret in compose.get("secrets", {}).values():
        name = Path(secret["file"]).name
        if not (DEPLOY / secret["file"]).exists():
            assert name in USER_FILES, f"{name} is neither shipped nor a documented user file"
            assert (DEPLOY / USER_FILES[name]).exists()
    assert not missing, missing
    readme = (DEPLOY / "README.md").read_text()
    for made, example in USER_FILES.items():
        assert made in readme and example in readme


def test_compose_variables_are_all_in_env_example(compose):
    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used <= set(example_env()), used - set(example_env())


def test_compose_receiver_command_is_a_valid_receive_command_line(compose):
    receiver = compose["services"]["receiver"]
    env = example_env()
    command = [interpolate(str(word), env) for word in receiver["command"]]
    args = build_parser().parse_args(["receive", *command])
    assert args.host == "127.0.0.1"  # only the proxy is public
    assert args.ice_server and args.ice_server[0].startswith("turn:")
    # the TURN credentials come from the environment the compose file sets
    from protocol.ice import ice_servers

    environment = {k: interpolate(str(v), env) for k, v in receiver["environment"].items()}
    servers = ice_servers(args.ice_server, username=environment["TEXTCALL_ICE_USERNAME"],
                          credential=environment["TEXTCALL_ICE_CREDENTIAL"])
    assert servers[0].username == "textcall" and servers[0].credential == env["TURN_PASSWORD"]
    # Caddy proxies to where the receiver listens
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert f"reverse_proxy {args.host}:{args.port}" in caddy


def test_turn_ports_match_the_readme():
    conf = dict(
        line.split("=", 1) for line in (DEPLOY / "turnserver.conf").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )  # fmt: skip
    readme = (DEPLOY / "README.md").read_text()
    assert f"{conf['min-port']}-{conf['max-port']}/udp" in readme
    assert f"{conf['listening-port']}/udp" in readme and f"{conf['listening-port']}/tcp" in readme


def test_ice_example_json_is_accepted():
    from protocol.ice import load_ice_config

    servers = load_ice_config(DEPLOY / "ice.example.json")
    assert any(server.is_turn and server.username for server in servers)


def test_tokens_example_is_accepted(tmp_path):
    from receiver.tokens import load_sender_tokens

    assert [sender for _, sender in load_sender_tokens(DEPLOY / "tokens.example.txt")] == [
        "laptop-anna",
        "laptop-ben",
    ]


# ---------------------------------------------------------------------------------- Dockerfiles


def test_dockerfiles_copy_what_exists_and_run_unprivileged():
    for name in ("receiver.Dockerfile", "sender.Dockerfile"):
        parsed = dockerfile(name)
        for copy in parsed["COPY"]:
            *sources, _ = shlex.split(copy)
            for source in sources:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), f"{name}: COPY {source} does not exist"
        assert parsed["USER"] and parsed["USER"][-1] not in ("root", "0")
        assert parsed["ENTRYPOINT"][0] == "textcall"
    receiver = dockerfile("receiver.Dockerfile")
    assert "cuda" in receiver["FROM"][0]
    assert any(".[receiver]" in run for run in receiver["RUN"])
    assert "/health" in receiver["HEALTHCHECK"][0]
    sender = dockerfile("sender.Dockerfile")
    assert not any("[receiver]" in run for run in sender["RUN"])


def test_receiver_container_command_runs_here_and_is_healthy(tmp_path):
    """ENTRYPOINT + CMD of receiver.Dockerfile with its ENV; then its HEALTHCHECK command."""
    parsed = dockerfile("receiver.Dockerfile")
    port = free_port()
    tokens = tmp_path / "tokens"
    tokens.write_text(f"laptop-anna {TOKEN}\n")
    tokens.chmod(0o600)
    argv = swap(
        parsed["ENTRYPOINT"] + parsed["CMD"],
        {"--model": "stub", "--device": "cpu", "--tokens": str(tokens),
         "--out": str(tmp_path / "recordings"), "--port": str(port)},
    )  # fmt: skip
    assert argv[:2] == ["textcall", "receive"]
    env = container_env(parsed["ENV"])
    process = Process([sys.executable, "-m", "sender", *argv[1:]], tmp_path / "receiver.log", env=env)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}", process)["model"] == "stub"
        check = json.loads(parsed["HEALTHCHECK"][0].split("CMD", 1)[1])
        check = [word.replace(":8765/", f":{port}/") for word in check]
        check[0] = sys.executable if check[0] == "python" else check[0]
        assert subprocess.run(check, env=env, timeout=30).returncode == 0
    finally:
        process.stop()
    assert "public address" not in process.output()  # it binds 127.0.0.1: nothing public to warn about


def test_sender_container_command_runs_here(tmp_path):
    parsed = dockerfile("sender.Dockerfile")
    argv = parsed["ENTRYPOINT"] + parsed["CMD"]
    assert argv == ["textcall", "send", "--help"]
    result = subprocess.run(
        [sys.executable, "-m", "sender", *argv[1:]], env=container_env(parsed["ENV"]),
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--receiver" in result.stdout and "--tls-ca" in result.stdout


# -------------------------------------------------------------------------------------- systemd


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str
    unit.read(DEPLOY / "textcall-receiver.service")
    return unit


def test_systemd_unit_flags_exist_in_receive_help():
    unit = _unit()
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/bin/textcall") and argv[1] == "receive"
    build_parser().parse_args(argv[1:])  # exits on an unknown flag
    help_text = receive_help()
    for flag in flags(argv[2:]):
        assert flag in help_text, flag
    assert unit["Service"]["User"] not in ("root", "0")
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_command_runs_here_over_tls(tmp_path):
    """The unit's ExecStart (TLS served by the receiver itself), with test files for /etc paths."""
    argv = shlex.split(_unit()["Service"]["ExecStart"])
    cert, key = self_signed(tmp_path / "tls")
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"laptop-anna {TOKEN}\n")
    tokens.chmod(0o600)
    ice = tmp_path / "ice.json"
    ice.write_text((DEPLOY / "ice.example.json").read_text())
    port = free_port()
    argv = swap(
        argv,
        {"--model": "stub", "--device": "cpu", "--tokens": str(tokens), "--ice-config": str(ice),
         "--tls-cert": str(cert), "--tls-key": str(key), "--out": str(tmp_path / "recordings"),
         "--port": str(port)},
    )  # fmt: skip
    process = Process([sys.executable, "-m", "sender", *argv[1:]], tmp_path / "receiver.log")
    try:
        context = ssl.create_default_context(cafile=str(cert))
        assert wait_healthy(f"https://127.0.0.1:{port}", process, context=context)["status"] == "ok"
    finally:
        process.stop()
    output = process.output()
    assert f"https://0.0.0.0:{port}" in output
    assert "listening on a public address" in output and "over TLS" in output
