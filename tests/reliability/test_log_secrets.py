"""``asr -v``: the Hub token never reaches stderr, even from a server that echoes it (issue 21)."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

TOKEN = "hf_TopSecretToken1234567890"


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the request's Authorization header reflected in its own headers."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Authorization", self.headers.get("Authorization", ""))
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


CLIENT = """
import logging, sys
from huggingface_hub.utils import get_session
from asr.log_setup import configure_logging
configure_logging(verbose=True)
url, token = sys.argv[1:]
response = get_session().get(url + "/api/whoami-v2", headers={"Authorization": "Bearer " + token})
assert response.headers["authorization"] == "Bearer " + token  # the server did reflect it
logging.getLogger("asr.test").debug("debug is on")
logging.getLogger("asr.test").info("pushing with token=%s", token)
"""


def test_verbose_logging_does_not_print_a_reflected_token(echo_url: str) -> None:
    done = subprocess.run([sys.executable, "-c", CLIENT, echo_url, TOKEN], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "debug is on" in done.stderr and "pushing with token=***" in done.stderr
    assert TOKEN not in done.stderr + done.stdout
