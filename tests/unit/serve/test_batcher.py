"""The batching worker with a stand-in model that records each call: windows, round-robin, failures."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from asr.errors import ConfigError
from asr.models.spec import DecodeOptions

pytest.importorskip("fastapi", reason="asr serve needs the serve extra")

from asr.serve.app import RETRY_CLOSING_SECONDS, ServeSettings, Service
from asr.serve.batcher import Batcher, Closed, Job
from asr.serve.errors import ApiError
from asr.serve.metrics import Metrics


class CountingModel:
    """Transcribes a wave as its length in samples; refuses language ``xx``; remembers each batch."""

    max_audio_seconds = 30.0
    max_input_seconds = 30.0

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.contexts: list[str | None] = []
        self.delay = delay

    def transcribe(self, waves, options: DecodeOptions, durations=None) -> list[str]:
        if options.language == "xx":
            raise ConfigError("language 'xx' is not one this model knows")
        self.calls.append([w.size for w in waves])
        self.contexts.append(options.context)
        time.sleep(self.delay)
        return [f" {w.size} " for w in waves]

    def clean_prediction(self, text: str) -> str:
        return text.strip()


def _batcher(model: CountingModel, max_batch: int = 4, window: float = 0.2) -> Batcher:
    batcher = Batcher(model, DecodeOptions(), max_batch, window, Metrics())
    batcher.start()
    return batcher


def _wave(samples: int) -> np.ndarray:
    return np.zeros(samples, np.float32)


def test_requests_within_the_window_share_one_call_and_each_gets_its_own_text() -> None:
    model = CountingModel()
    batcher = _batcher(model, window=0.5)
    futures = [batcher.submit(Job([_wave(1000 + n)])) for n in range(3)]
    assert [f.result(10) for f in futures] == [["1000"], ["1001"], ["1002"]]
    batcher.close()
    assert len(model.calls) == 1 and sorted(model.calls[0]) == [1000, 1001, 1002]
    assert batcher.metrics.batch_requests.samples()[-1] == "asr_serve_batch_requests_count 1"


def test_a_short_request_is_not_stuck_behind_a_long_recording_s_pieces() -> None:
    model = CountingModel(delay=0.3)
    batcher = _batcher(model, max_batch=4, window=0.3)
    long = batcher.submit(Job([_wave(2000 + n) for n in range(10)]))
    while not model.calls:  # the recording's first batch is being decoded
        time.sleep(0.005)
    short = batcher.submit(Job([_wave(500)]))
    assert short.result(10) == ["500"]
    assert long.result(10) == [str(2000 + n) for n in range(10)]  # in the recording's order
    batcher.close()
    # round-robin: the short clip rides in the next batch, not after the recording's 8 other pieces
    assert model.calls[0] == [2000, 2001, 2002, 2003] and 500 in model.calls[1]
    assert all(len(call) <= 4 for call in model.calls) and sum(map(len, model.calls)) == 11


def test_a_request_s_prompt_is_its_own_context_and_the_others_keep_the_default() -> None:
    model = CountingModel()
    batcher = Batcher(model, DecodeOptions(context="default words"), 4, 0.3, Metrics())
    batcher.start()
    prompted = batcher.submit(Job([_wave(30)], context="hot words"))
    plain = batcher.submit(Job([_wave(40)]))
    assert prompted.result(10) == ["30"] and plain.result(10) == ["40"]
    batcher.close()
    # one batch, decoded in one call per context (asr.inference.transcribe_batch)
    assert dict(zip(model.contexts, model.calls, strict=True)) == {"hot words": [30], "default words": [40]}


def test_one_request_s_bad_setting_fails_only_that_request() -> None:
    model = CountingModel()
    batcher = _batcher(model, window=0.3)
    bad = batcher.submit(Job([_wave(10)], language="xx"))
    good = batcher.submit(Job([_wave(20)]))
    assert good.result(10) == ["20"]
    with pytest.raises(ConfigError, match="xx"):
        bad.result(10)
    batcher.close()


def test_close_decodes_what_is_queued_then_refuses_new_requests() -> None:
    model = CountingModel()
    batcher = _batcher(model, window=5.0)  # the window has not passed when close() is called
    queued = batcher.submit(Job([_wave(7)]))
    closer = threading.Thread(target=batcher.close)
    closer.start()
    assert queued.result(10) == ["7"]
    closer.join(10)
    with pytest.raises(Closed):
        batcher.submit(Job([_wave(8)]))


def test_a_server_shutting_down_or_full_answers_with_retry_after(tmp_path) -> None:
    service = Service(CountingModel(), DecodeOptions(), "m", ServeSettings(max_queue=1, tmp_dir=tmp_path))
    service.in_progress = 1
    with pytest.raises(ApiError) as busy:
        service.admit()
    assert busy.value.status == 429 and busy.value.headers() == {"Retry-After": "1"}
    service.closing = True
    with pytest.raises(ApiError) as closing:
        service.admit()
    assert closing.value.status == 503 and closing.value.headers() == {
        "Retry-After": str(RETRY_CLOSING_SECONDS)
    }
    assert closing.value.body()["error"]["code"] == "shutting_down"
