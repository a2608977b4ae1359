"""A loopback stand-in for the Hugging Face Hub: the endpoints huggingface_hub 2.4 uses to push.

``HfApi.create_repo`` and ``HfApi.upload_folder`` (with Xet disabled, ``HF_HUB_DISABLE_XET=1``)
call, in order:

- ``POST /api/repos/create`` (409 when the repo exists; ``exist_ok`` accepts that),
- ``POST /api/validate-yaml`` for a README.md's metadata,
- ``POST /api/models/{repo}/preupload/{rev}``: per file, ``regular`` or ``lfs``,
- ``POST /{repo}.git/info/lfs/objects/batch`` then ``PUT`` each LFS object to the ``href`` it
  returns, then ``POST`` the ``verify`` action,
- ``POST /api/models/{repo}/commit/{rev}``: NDJSON, a header line and one line per file
  (``file`` with base64 content, or ``lfsFile`` naming an uploaded object by sha256).

Besides, ``GET /api/agent-harnesses`` (user-agent detection, from ``constants.ENDPOINT``) and
``GET /api/whoami-v2`` / ``GET /api/models/{repo}`` are answered. The commit applies all files or none. Unknown routes answer 404 and are logged as errors and
kept in :attr:`FakeHub.unknown`, so a client that starts calling something new fails loudly.
Failure modes: :attr:`FakeHub.fail_commit` (an HTTP status for the commit call);
:attr:`FakeHub.gate`, called with each request's method and path once its body is read: it may
block (to kill the client meanwhile) and returns False to drop the request unanswered, unapplied.

>>> with FakeHub(token="hf_test") as hub:  # doctest: +SKIP
...     HfApi(endpoint=hub.url, token="hf_test").create_repo("me/m")
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import yaml

log = logging.getLogger("fake_hub")

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".model", ".zip")
LFS_MIN_SIZE = 10 * 1024 * 1024
MAX_BODY = 512 * 1024 * 1024
REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"


@dataclass
class Repo:
    """One model repository: its files after the last commit, and the commits made."""

    private: bool | None
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


class _Reply(Exception):
    def __init__(self, status: int, body: Any = None):
        super().__init__(status)
        self.status, self.body = status, body if body is not None else {}


class FakeHub:
    """A threaded HTTP server on 127.0.0.1 (random port); start/stop it or use it as a context manager."""

    def __init__(self, token: str, user: str = "tester"):
        self.token = token
        self.user = user
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[str] = []
        self.fail_commit: int | None = None
        self.gate: Callable[[str, str], bool] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- routes ---------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, re.Pattern[str], Any]]:
        table = [
            ("POST", r"/api/repos/create", self.create_repo),
            ("POST", r"/api/validate-yaml", self.validate_yaml),
            ("GET", r"/api/whoami-v2", self.whoami),
            ("GET", r"/api/agent-harnesses", self.agent_harnesses),
            ("GET", rf"/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?", self.repo_info),
            ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)", self.preupload),
            ("POST", rf"/{REPO}\.git/info/lfs/objects/batch", self.lfs_batch),
            ("PUT", r"/__lfs/(?P<oid>[0-9a-f]{64})", self.lfs_put),
            ("POST", r"/__lfs_verify", self.lfs_verify),
            ("POST", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)", self.commit),
        ]
        return [(method, re.compile(f"^{pattern}$"), fn) for method, pattern, fn in table]

    def _auth(self, headers: Any) -> None:
        if headers.get("authorization", "") != f"Bearer {self.token}":
            raise _Reply(401, {"error": "Invalid credentials in Authorization header"})

    def _repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise _Reply(404, {"error": "Repository not found"})
        return self.repos[repo_id]

    def create_repo(self, headers: Any, body: bytes) -> Any:
        self._auth(headers)
        payload = json.loads(body)
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        with self._lock:
            if repo_id in self.repos:
                raise _Reply(
                    409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}
                )
            self.repos[repo_id] = Repo(
                private=payload.get("visibility") == "private" if "visibility" in payload else None
            )
        return {"url": f"{self.url}/{repo_id}", "name": repo_id}

    def validate_yaml(self, headers: Any, body: bytes) -> Any:
        content = json.loads(body).get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as err:
            raise _Reply(400, {"errors": [{"message": f"invalid YAML: {err}"}]}) from err
        if meta is not None and not isinstance(meta, dict):
            raise _Reply(400, {"errors": [{"message": "metadata must be a mapping"}]})
        return {"errors": [], "warnings": []}

    def whoami(self, headers: Any, body: bytes) -> Any:
        self._auth(headers)
        return {"type": "user", "name": self.user, "auth": {"accessToken": {"role": "write"}}}

    def agent_harnesses(self, headers: Any, body: bytes) -> Any:
        return {"standardEnvVars": [], "harnesses": {}}  # user-agent detection, fetched once per process

    def repo_info(self, headers: Any, body: bytes, repo: str, rev: str | None = None) -> Any:
        r = self._repo(repo)
        return {
            "id": repo,
            "sha": r.sha,
            "private": bool(r.private),
            "siblings": [{"rfilename": p} for p in r.files],
        }

    def preupload(self, headers: Any, body: bytes, repo: str, rev: str) -> Any:
        self._auth(headers)
        r = self._repo(repo)
        files = []
        for f in json.loads(body)["files"]:
            sample = base64.b64decode(f.get("sample", ""))
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_MIN_SIZE or b"\x00" in sample
            existing = r.files.get(f["path"])
            oid = hashlib.sha1(b"blob %d\x00" % len(existing) + existing).hexdigest() if existing else None
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        return {"files": files, "commitOid": r.sha}

    def lfs_batch(self, headers: Any, body: bytes, repo: str) -> Any:
        self._auth(headers)
        self._repo(repo)
        payload = json.loads(body)
        if payload.get("operation") != "upload":
            raise _Reply(400, {"message": "only uploads"})
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/__lfs/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.url}/__lfs_verify", "header": {}},
                }
            objects.append(entry)
        return {"transfer": "basic", "objects": objects}

    def lfs_put(self, headers: Any, body: bytes, oid: str) -> Any:
        if hashlib.sha256(body).hexdigest() != oid:
            raise _Reply(400, {"error": "content does not match the object id"})
        with self._lock:
            self.lfs_objects[oid] = body
        return {}

    def lfs_verify(self, headers: Any, body: bytes) -> Any:
        self._auth(headers)
        payload = json.loads(body)
        data = self.lfs_objects.get(payload["oid"])
        if data is None or len(data) != payload["size"]:
            raise _Reply(404, {"error": "object not uploaded"})
        return {}

    def commit(self, headers: Any, body: bytes, repo: str, rev: str) -> Any:
        self._auth(headers)
        r = self._repo(repo)
        if self.fail_commit:
            raise _Reply(self.fail_commit, {"error": "Internal Error - we're working hard to fix this"})
        lines = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _Reply(400, {"error": "first line must be the header"})
        staged: dict[str, bytes] = {}
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                if value.get("encoding") != "base64":
                    raise _Reply(400, {"error": f"unsupported encoding for {value['path']}"})
                staged[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                data = self.lfs_objects.get(value["oid"])
                if data is None or len(data) != value["size"]:
                    raise _Reply(400, {"error": f"LFS object of {value['path']} was not uploaded"})
                staged[value["path"]] = data
            else:
                raise _Reply(400, {"error": f"unsupported operation {line['key']}"})
        digest = hashlib.sha1(r.sha.encode())
        for path in sorted(staged):
            digest.update(path.encode() + hashlib.sha256(staged[path]).digest())
        oid = digest.hexdigest()
        with self._lock:
            r.files.update(staged)
            r.commits.append(
                {"oid": oid, "summary": lines[0]["value"].get("summary"), "files": sorted(staged)}
            )
        return {"commitUrl": f"{self.url}/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        chunks, total = [], 0
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise _Reply(413, {"error": "body too large"})
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("content-length") or 0)
    if length > MAX_BODY:
        raise _Reply(413, {"error": "body too large"})
    return handler.rfile.read(length) if length else b""


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    routes = hub.routes()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # seconds a connection may idle; bounds a stuck client

        def _dispatch(self, method: str) -> None:
            path = urlsplit(self.path).path
            with hub._lock:
                hub.requests.append((method, path))
            try:
                body = _read_body(self)
                if hub.gate is not None and not hub.gate(method, path):
                    self.close_connection = True
                    return
                for route_method, pattern, fn in routes:
                    match = pattern.match(path)
                    if route_method == method and match:
                        reply = _Reply(200, fn(self.headers, body, **match.groupdict()))
                        break
                else:
                    log.error("fake hub: UNKNOWN ROUTE %s %s", method, path)
                    with hub._lock:
                        hub.unknown.append(f"{method} {path}")
                    reply = _Reply(404, {"error": f"fake hub has no route {method} {path}"})
            except _Reply as r:
                reply = r
            except Exception as err:  # a bug in the fake server: answer 500 and say so
                log.exception("fake hub: %s %s failed", method, path)
                reply = _Reply(500, {"error": f"fake hub error: {err}"})
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if reply.status >= 400 and isinstance(reply.body, dict) and "error" in reply.body:
                self.send_header(
                    "X-Error-Message", str(reply.body["error"]).encode("ascii", "replace").decode()
                )
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("fake hub: " + format, *args)  # never headers, so never the token

    return Handler
