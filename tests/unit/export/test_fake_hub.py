"""The loopback fake Hub itself: auth, atomic commits, LFS checks, chunked bodies, unknown routes."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json

import pytest

from asr import hub as hub_module
from tests.fake_hub import FakeHub

TOKEN = "hf_fakehubUNITtoken"


@pytest.fixture
def fake_hub():
    with FakeHub(token=TOKEN) as hub:
        yield hub


def _call(hub: FakeHub, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection(hub.url.removeprefix("http://"), timeout=10)
    try:
        conn.request(method, path, body=body, headers={"authorization": f"Bearer {TOKEN}", **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _create(hub: FakeHub, name: str = "m") -> None:
    assert (
        _call(hub, "POST", "/api/repos/create", json.dumps({"name": name, "organization": "me"}).encode())[0]
        == 200
    )


def test_unknown_routes_are_recorded(fake_hub):
    status, body = _call(fake_hub, "GET", "/api/spaces/me/x/runtime")
    assert status == 404 and "no route" in body["error"]
    assert fake_hub.unknown == ["GET /api/spaces/me/x/runtime"]


def test_wrong_token_is_refused_and_reported_without_the_token(fake_hub, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setattr(constants, "ENDPOINT", fake_hub.url)
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agents.json"))
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n")
    wrong = "hf_WRONGtokenABC"
    with pytest.raises(hub_module.HubCredentialsError, match="refused \\(401\\)") as info:
        hub_module.push_folder(tmp_path, "me/m", token=wrong)
    assert wrong not in str(info.value)
    assert fake_hub.repos == {}


def test_commit_is_all_or_nothing(fake_hub):
    _create(fake_hub)
    lines = [
        {"key": "header", "value": {"summary": "s", "description": ""}},
        {
            "key": "file",
            "value": {"path": "a.txt", "content": base64.b64encode(b"a").decode(), "encoding": "base64"},
        },
        {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": "0" * 64, "size": 3}},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    status, reply = _call(fake_hub, "POST", "/api/models/me/m/commit/main", body)
    assert status == 400 and "was not uploaded" in reply["error"]
    assert fake_hub.repos["me/m"].files == {} and fake_hub.repos["me/m"].commits == []

    fake_hub.fail_commit = 500
    assert _call(fake_hub, "POST", "/api/models/me/m/commit/main", body)[0] == 500
    assert fake_hub.repos["me/m"].commits == []


def test_lfs_put_checks_content_and_reads_chunked_bodies(fake_hub):
    data = b"\x00weights" * 1000
    oid = hashlib.sha256(data).hexdigest()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (data[:4000], data[4000:])) + b"0\r\n\r\n"
    status, _ = _call(fake_hub, "PUT", f"/__lfs/{oid}", chunked, {"Transfer-Encoding": "chunked"})
    assert status == 200 and fake_hub.lfs_objects[oid] == data
    assert _call(fake_hub, "PUT", f"/__lfs/{'1' * 64}", b"other")[0] == 400


def test_preupload_sends_binaries_and_weights_to_lfs(fake_hub):
    _create(fake_hub)
    files = [
        {"path": "README.md", "sample": base64.b64encode(b"# hi").decode(), "size": 4},
        {"path": "model.safetensors", "sample": base64.b64encode(b"{}").decode(), "size": 2},
        {"path": "curve.png", "sample": base64.b64encode(b"\x89PNG\x00").decode(), "size": 5},
    ]
    status, reply = _call(
        fake_hub, "POST", "/api/models/me/m/preupload/main", json.dumps({"files": files}).encode()
    )
    assert status == 200
    assert {f["path"]: f["uploadMode"] for f in reply["files"]} == {
        "README.md": "regular",
        "model.safetensors": "lfs",
        "curve.png": "lfs",
    }
