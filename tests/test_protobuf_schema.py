"""formats/sample.proto is the source of truth: the committed sample_pb2.py must be what protoc makes of it."""

from __future__ import annotations

from pathlib import Path

import pytest

FORMATS = Path(__file__).resolve().parent.parent / "formats"


def test_generated_module_matches_proto(tmp_path):
    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools (a dev dependency) regenerates the module")
    rc = protoc.main(["protoc", f"-I{FORMATS}", f"--python_out={tmp_path}", str(FORMATS / "sample.proto")])
    assert rc == 0
    assert (tmp_path / "sample_pb2.py").read_text() == (FORMATS / "sample_pb2.py").read_text(), (
        "formats/sample_pb2.py is stale: regenerate it (command at the top of formats/sample.proto)"
    )


def test_protobuf_uses_upb():
    from google.protobuf.internal import api_implementation

    import feedtax.formats.protobuf  # noqa: F401

    assert api_implementation.Type() == "upb"
