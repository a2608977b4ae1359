"""``asr serve`` on a free port with a tiny random Whisper, driven by the official ``openai`` client.

Most tests share one server run in a thread (uvicorn, the model loaded once); the API-key and
shutdown test runs the real ``asr serve`` command in a subprocess and reads its logs.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from asr.cli import main
from asr.data.audio import write_wav
from asr.data.manifest import read_manifest
from tests.longform_media import RATE, demo_clips, join, parse_cues, write_media

openai = pytest.importorskip("openai", reason="the openai client comes with the dev extra")
pytest.importorskip("fastapi", reason="asr serve needs the serve extra")
httpx = pytest.importorskip("httpx2")

from asr.serve.app import ServeSettings, create_app  # noqa: E402
from asr.serve.server import bind, make_server  # noqa: E402
from recipes import serve as serve_recipe  # noqa: E402

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
WINDOW_MS = 1000  # wide enough that four uploads sent at once share a batch on a busy machine


def _load(model_dir: Path):
    """The model and options as ``asr serve --model DIR --device cpu`` loads them."""
    parser = argparse.ArgumentParser()
    serve_recipe.add_arguments(parser)
    return serve_recipe.load_for_serving(parser.parse_args(["--model", str(model_dir), "--device", "cpu"]))


@pytest.fixture(scope="module")
def served_model(tiny_whisper: Path):
    return _load(tiny_whisper)


@contextmanager
def running(served_model, **settings) -> Iterator[str]:
    """``asr serve``'s app on a free port in a thread; its base URL. Stops like Ctrl-C at the end."""
    model, options = served_model
    app = create_app(model, options, "tiny", ServeSettings(**settings))
    sock = bind("127.0.0.1", 0)
    server = make_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def server(served_model, uploads: Path) -> Iterator[str]:
    settings = dict(batch_window_ms=0, max_batch=8, max_upload_mb=2.0, max_audio_seconds=60.0)
    with running(served_model, tmp_dir=uploads, **settings) as url:
        yield url


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return float(re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)[1])


@pytest.fixture(scope="module")
def tiny_ctc(few_clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random wav2vec2 CTC model: unlike the tiny Whisper (one text for every clip), its
    texts follow the audio, so each answer can be told to be its own clip's."""
    from tests.model_factory import build

    texts = [u.text for u in read_manifest(few_clips / "manifests" / "train.jsonl")]
    return build("xlsr-53-zh", tmp_path_factory.mktemp("tiny-ctc") / "model", texts=texts)


@pytest.mark.parametrize("family", ["whisper", "ctc"])
def test_the_openai_client_gets_evaluate_s_text_and_concurrent_requests_share_a_batch(
    family: str, served_model, tiny_whisper: Path, few_clips: Path, tmp_path: Path, request
) -> None:
    model_dir = tiny_whisper if family == "whisper" else request.getfixturevalue("tiny_ctc")
    manifest = few_clips / "manifests" / "test.jsonl"
    args = [
        "evaluate",
        "--model",
        str(model_dir),
        "--manifest",
        str(manifest),
        "--out",
        str(tmp_path / "run"),
    ]
    assert main([*args, "--device", "cpu", "--no-progress", "--bootstrap", "10"]) == 0
    with (tmp_path / "run" / "predictions.csv").open(encoding="utf-8", newline="") as f:
        expected = {r["id"]: r["prediction"] for r in csv.DictReader(f)}
    utts = read_manifest(manifest)
    if family == "ctc":
        assert len(set(expected.values())) == len(utts)  # each clip its own text
    loaded = served_model if family == "whisper" else _load(model_dir)
    uploads = tmp_path / "uploads"
    with running(loaded, batch_window_ms=WINDOW_MS, tmp_dir=uploads) as url:
        client = _client(url)

        def ask(audio: str) -> str:
            with open(audio, "rb") as f:
                return client.audio.transcriptions.create(model="whisper-1", file=f).text

        with ThreadPoolExecutor(len(utts)) as pool:
            got = dict(zip([u.id for u in utts], pool.map(ask, [u.audio for u in utts]), strict=True))
        assert got == expected
        singles = _metric(url, 'asr_serve_batch_requests_bucket{le="1"}')
        batches = _metric(url, "asr_serve_batch_requests_count")
        assert batches < len(utts) and batches - singles >= 1  # at least one batch held several requests
        assert _metric(url, 'asr_serve_requests_total{path="/v1/audio/transcriptions",status="200"}') == len(
            utts
        )
        assert _metric(url, "asr_serve_audio_seconds_total") == pytest.approx(
            sum(u.duration for u in utts), abs=0.01
        )
        assert list(uploads.iterdir()) == []


def test_subtitle_and_verbose_formats_parse_for_a_clip_and_a_long_recording(
    server: str, uploads: Path, tmp_path: Path
) -> None:
    client = _client(server)
    rec = join(demo_clips(3), pauses=[9.0])  # 1 s lead + three clips + 9 s pauses: past 30 s
    assert 30 < rec.audio.size / RATE < 60
    long = write_media(tmp_path / "talk.m4a", rec.audio)
    wave = demo_clips(1)[0][0]
    clip = write_wav(tmp_path / "clip.wav", wave)
    for path, pieces, seconds in ((clip, 1, wave.size / RATE), (long, 3, rec.audio.size / RATE)):
        with path.open("rb") as f:
            verbose = client.audio.transcriptions.create(model="tiny", file=f, response_format="verbose_json")
        segments = verbose.segments
        assert len(segments) == pieces and verbose.text == "".join(s.text.strip() for s in segments)
        assert verbose.duration == pytest.approx(seconds, abs=0.15)  # AAC priming and padding
        if path == long:  # one VAD piece per clip, around its speech
            for seg, (start, end) in zip(segments, rec.speech, strict=True):
                assert start - 0.5 <= seg.start <= start + 0.5 and end - 0.5 <= seg.end <= end + 0.5
        spoken = [(s.start, s.end) for s in segments if s.text.strip()]
        for kind in ("srt", "vtt"):
            with path.open("rb") as f:
                text = client.audio.transcriptions.create(model="tiny", file=f, response_format=kind)
            assert [c[:2] for c in parse_cues(text, kind)] == spoken
        with path.open("rb") as f:
            plain = client.audio.transcriptions.create(model="tiny", file=f, response_format="text")
        assert plain.strip() == verbose.text
    assert list(uploads.iterdir()) == []


def _post(url: str, files: dict | None = None, data: dict | None = None, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/v1/audio/transcriptions", files=files, data=data, timeout=60, **kwargs)


def test_each_limit_and_bad_input_is_an_openai_error_and_leaves_no_temp_file(
    server: str, uploads: Path, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "ok.wav", np.zeros(RATE, np.float32))
    import soundfile as sf

    sf.write(str(tmp_path / "long.flac"), np.zeros(61 * RATE, np.float32), RATE)  # small file, 61 s
    cases = [
        ({"file": ("big.wav", os.urandom(3_000_000))}, {}, 413, "file_too_large", "larger than"),
        ({"file": ("long.flac", (tmp_path / "long.flac").read_bytes())}, {}, 413, "audio_too_long", "61.0 s"),
        ({"file": ("empty.wav", b"")}, {}, 400, "invalid_audio", "empty.wav: the uploaded file is empty"),
        (
            {"file": ("notes.mp3", b"these are not audio bytes" * 40)},
            {},
            400,
            "invalid_audio",
            "notes.mp3: not a decodable",
        ),
        (
            {"file": ("ok.wav", wav.read_bytes())},
            {"response_format": "docx"},
            400,
            None,
            "response_format 'docx'",
        ),
        (None, {"model": "tiny"}, 400, None, None),
        ({"other": ("ok.wav", wav.read_bytes())}, {}, 400, None, "no 'file' field"),
    ]
    for files, data, status, code, words in cases:
        answer = _post(server, files, data)
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
        assert words is None or words in error["message"], error
        assert str(uploads) not in error["message"]
        assert list(uploads.iterdir()) == []
    bad = _client(server)
    with pytest.raises(openai.BadRequestError, match="empty"):
        bad.audio.transcriptions.create(model="tiny", file=("e.wav", b""))
    assert _metric(server, 'asr_serve_requests_total{path="/v1/audio/transcriptions",status="413"}') >= 2


def test_a_full_queue_answers_429_with_retry_after(served_model, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "ok.wav", np.zeros(RATE, np.float32)).read_bytes()
    settings = dict(batch_window_ms=1500, max_queue=1, tmp_dir=tmp_path / "up")
    with running(served_model, **settings) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(_post, url, {"file": ("a.wav", wav)})
        deadline = time.monotonic() + 20
        while _metric(url, "asr_serve_requests_in_progress") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = _post(url, {"file": ("b.wav", wav)})
        assert first.result().status_code == 200
    assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "queue_full"
    assert list((tmp_path / "up").iterdir()) == []


def test_the_command_requires_its_key_never_logs_it_and_finishes_requests_on_sigterm(
    tiny_whisper: Path, tmp_path: Path
) -> None:
    key = "sk-test-" + os.urandom(12).hex()
    (tmp_path / "key").write_text(key + "\n", encoding="utf-8")
    port_sock = bind("127.0.0.1", 0)
    port = port_sock.getsockname()[1]
    port_sock.close()
    log = (tmp_path / "log").open("w+", encoding="utf-8")
    command = [sys.executable, "-m", "asr.cli", "-v", "serve", "--model", str(tiny_whisper), "--device", "cpu",
               "--port", str(port), "--api-key-file", str(tmp_path / "key"), "--batch-window-ms", "1500"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        wav = write_wav(tmp_path / "ok.wav", np.zeros(RATE, np.float32))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": key}):
            answer = _post(url, {"file": ("ok.wav", wav.read_bytes())}, headers=headers)
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
            assert answer.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        models = _client(url, key).models.list()
        assert [m.id for m in models.data] == [tiny_whisper.name]
        with ThreadPoolExecutor(1) as pool:  # in flight (waiting out the batch window) at SIGTERM
            pending = pool.submit(
                lambda: _client(url, key).audio.transcriptions.create(model="tiny", file=wav.open("rb"))
            )
            deadline = time.monotonic() + 20
            while _metric(url, "asr_serve_queue_length") < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            assert isinstance(pending.result().text, str)
        # uvicorn re-raises the signal once shut down: a SIGTERM exit after the clean shutdown
        assert proc.wait(60) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    logged = log.read()
    assert "transcribed ok.wav" in logged and "Application shutdown complete" in logged
    assert key not in logged and key[8:] not in logged
