"""The HTML error report in a real headless browser (Debian's chromium): load, sort, filter, screenshot.

The page applies URL-hash parameters by setting its controls and clicking its headers (the same
handlers a user triggers); chromium renders it with JavaScript and dumps the resulting DOM.
Skipped only where chromium is absent outside CI; in CI (``CI`` set) a missing browser fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from asr.report.html import write_error_report
from tests.report_fixtures import HYPS_A, write_data, write_eval

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/install_system_deps.sh installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _run(browser: str, *args: str) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--virtual-time-budget=5000", *args]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("html")
    data = write_data(root / "data")
    # A raw output with markup: it must show as text, never become an element.
    raw = {"video_1_1": "我事长沙人啊<img src=x onerror=alert(1)>&amp;</script>"}
    eval_dir = write_eval(root / "eval", HYPS_A, data, raw=raw)
    page = write_error_report(eval_dir)
    assert page == eval_dir / "report.html"
    return page


def _rows(dom: str) -> list[str]:
    body = dom.split('<table id="utts">', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<tr data-id="([^"]+)"', body)


def test_page_is_self_contained_and_escaped(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no network
    data = html.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert "<img" not in html and "<" not in data and "\\u003cimg" in data  # markup stays data
    assert 'src="../data/audio/video_1_1.wav"' not in html  # audio paths live in the JSON
    assert "../data/audio/video_1_1.wav" in html
    assert "噻” repeated" in html and "好的” repeated" in html  # flagged loops
    assert "<td>噻</td><td>7</td>" in html  # most frequent inserted character


def test_sort_and_filter_in_a_real_browser(browser: str, report: Path) -> None:
    url = report.as_uri()
    dom = _run(browser, "--dump-dom", url)
    assert 'data-ready="1"' in dom
    assert _rows(dom) == ["video_1_1", "video_1_2", "video_2_1", "video_2_2", "video_3_1"]  # manifest order
    assert "5 of 5 utterances" in dom
    assert '<span class="I">噻</span>' in dom and '<span class="S">是</span>' in dom
    assert "<img" not in dom.split('id="report-data"')[0]  # still text after rendering
    assert "raw output: 我事长沙人啊&lt;img src=x onerror=alert(1)&gt;&amp;amp;&lt;/script&gt;" in dom

    by_cer = _rows(_run(browser, "--dump-dom", url + "#sort=cer&order=desc"))
    assert by_cer == ["video_3_1", "video_2_2", "video_2_1", "video_1_1", "video_1_2"]
    ascending = _rows(_run(browser, "--dump-dom", url + "#sort=cer"))
    assert ascending == by_cer[::-1]

    filtered = _run(browser, "--dump-dom", url + "#sort=duration&order=desc&dmax=6&speaker=video%202")
    assert _rows(filtered) == ["video_2_2", "video_2_1"]
    assert "2 of 5 utterances" in unescape(filtered)
    assert _rows(_run(browser, "--dump-dom", url + "#text=公园")) == ["video_2_2"]
    assert _rows(_run(browser, "--dump-dom", url + "#loops=1&sort=id&order=desc")) == [
        "video_3_1",
        "video_2_2",
    ]


def test_screenshot_is_not_blank(browser: str, report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    _run(browser, f"--screenshot={shot}", "--window-size=1200,900", report.as_uri() + "#sort=cer&order=desc")
    image = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert image.shape == (900, 1200)
    assert image.std() > 10 and (image < 128).mean() > 0.005  # text and colours, not a blank page
