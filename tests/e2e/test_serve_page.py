"""The page at ``/`` of ``asr serve`` in headless chromium, driven over the DevTools protocol:
choose a WAV in its file input, see the transcript and its segments, build the SRT download.

Skipped only where chromium is absent outside CI; in CI (``CI`` set) a missing browser fails.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from asr.data.audio import write_wav
from tests.longform_media import RATE, demo_clips

pytest.importorskip("fastapi", reason="asr serve needs the serve extra")
websockets_sync = pytest.importorskip("websockets.sync.client", reason="websockets comes with the dev extra")
httpx = pytest.importorskip("httpx2")

from tests.e2e.test_serve import _load, running  # noqa: E402

pytestmark = pytest.mark.e2e
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class Page:
    """One chromium tab over the DevTools protocol (commands answered in order; events skipped)."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        self.socket.send(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == n:
                assert "error" not in message, message
                return message["result"]

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait(self, expression: str, seconds: float = 90) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/install_system_deps.sh installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium")
    proc = subprocess.Popen(
        [found, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            assert time.monotonic() < deadline and proc.poll() is None, "chromium did not start"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            tab = next(t for t in json.load(answer) if t["type"] == "page")
        with websockets_sync.connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            yield Page(socket)
    finally:
        proc.terminate()
        proc.wait(30)


def _choose(page: Page, path: Path) -> None:
    """What a user does: pick ``path`` in the page's file input (the change event starts the upload)."""
    root = page.call("DOM.getDocument")["root"]["nodeId"]
    node = page.call("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
    page.call("DOM.setFileInputFiles", nodeId=node, files=[str(path)])


def test_the_page_transcribes_an_uploaded_wav_and_builds_its_subtitles(
    browser: Page, tiny_whisper: Path, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "clip.wav", demo_clips(1)[0][0])
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with running(_load(tiny_whisper), tmp_dir=tmp_path / "uploads") as url:
        files = {"file": ("clip.wav", wav.read_bytes())}
        verbose = httpx.post(f"{url}/v1/audio/transcriptions", files=files,
                             data={"response_format": "verbose_json"}, timeout=60).json()  # fmt: skip
        srt = httpx.post(f"{url}/v1/audio/transcriptions", files=files,
                         data={"response_format": "srt"}, timeout=60).text  # fmt: skip
        browser.call("Page.navigate", url=f"{url}/")
        browser.wait("document.readyState === 'complete' && !!document.getElementById('file')")
        assert browser.js("document.body.dataset.model") == "tiny"
        assert "<script src" not in browser.js("document.documentElement.outerHTML")  # no CDN

        _choose(browser, wav)
        status = browser.wait("/s of audio|Failed/.test(document.getElementById('status').textContent) && "
                              "document.getElementById('status').textContent")  # fmt: skip
        assert re.match(r"clip\.wav: \d+\.\d s of audio in", status), status
        assert browser.js("document.getElementById('text').textContent") == verbose["text"]
        rows = browser.js("[...document.querySelectorAll('#segments tr')].map(r => r.cells[1].textContent)")
        assert rows == [s["text"] for s in verbose["segments"]]
        assert browser.js("render('srt')") == srt  # the download the SRT button makes
        assert browser.js("document.getElementById('downloads').hidden") is False

        _choose(browser, empty)
        status = browser.wait("document.getElementById('status').className === 'error' && "
                              "document.getElementById('status').textContent")  # fmt: skip
        assert status == "Failed: empty.wav: the uploaded file is empty"
        assert list((tmp_path / "uploads").iterdir()) == []
    assert np.isclose(verbose["duration"], demo_clips(1)[0][0].size / RATE, atol=0.01)
