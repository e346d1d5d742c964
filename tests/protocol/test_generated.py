"""The checked-in textcall_pb2.py/.pyi must be what protoc makes of textcall.proto today."""

from __future__ import annotations

from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"


def test_generated_code_is_fresh(tmp_path):
    protoc = pytest.importorskip("grpc_tools.protoc", reason="needs the dev extra (grpcio-tools)")
    args = ["protoc", f"-I{PROTOCOL}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}",
            str(PROTOCOL / "textcall.proto")]
    assert protoc.main(args) == 0
    for name in ("textcall_pb2.py", "textcall_pb2.pyi"):
        fresh = (tmp_path / name).read_text()
        assert (PROTOCOL / name).read_text() == fresh, (
            f"protocol/{name} is stale; regenerate it (see protocol/README.md)"
        )
