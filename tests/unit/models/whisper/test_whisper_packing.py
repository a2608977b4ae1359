"""Packed Whisper decoding: the window plan, the split back per clip, and the tiny-model path."""

from __future__ import annotations

import numpy as np
import pytest

from asr.models.whisper.packing_plan import (
    Attribution,
    Segment,
    Window,
    attribute,
    pack,
    plan_windows,
    segments_from_tokens,
)

TS = 1000  # timestamp_begin in the synthetic token streams
SPECIAL = {900, 901}


def test_plan_places_clips_gap_apart_and_starts_a_new_window_when_full() -> None:
    windows = plan_windows([4.0, 5.0, 10.0, 9.0, 3.0], gap_s=1.0, max_s=29.0)
    assert [w.indices for w in windows] == [(0, 1, 2), (3, 4)]
    assert windows[0].starts == (0.0, 5.0, 11.0)
    assert windows[0].spans == [(0.0, 4.0), (5.0, 10.0), (11.0, 21.0)]
    assert windows[1].starts == (0.0, 10.0) and windows[1].end == 13.0


def test_plan_fills_exactly_to_the_limit() -> None:
    windows = plan_windows([14.0, 14.0, 1.0], gap_s=1.0, max_s=29.0)
    assert [w.indices for w in windows] == [(0, 1), (2,)]  # 14 + 1 + 14 = 29 fits; the 1 s clip does not


def test_long_clips_go_alone() -> None:
    windows = plan_windows([3.0, 35.0, 2.0, 29.5, 2.0], gap_s=1.0, max_s=29.0)
    assert [w.indices for w in windows] == [(0,), (1,), (2,), (3,), (4,)]
    assert all(w.starts == (0.0,) for w in windows)


def test_longest_first_packs_fuller_windows_and_keeps_indices() -> None:
    durations = [2.0, 20.0, 3.0, 8.0, 5.0]
    windows = plan_windows(durations, gap_s=1.0, max_s=29.0, longest_first=True)
    assert [w.indices for w in windows] == [(1, 3), (4, 2, 0)]
    assert sorted(i for w in windows for i in w.indices) == list(range(5))
    assert windows[1].durations == (5.0, 3.0, 2.0)


def test_pack_puts_each_clip_at_its_offset() -> None:
    sr = 16000
    waves = [np.full(sr, 1.0, np.float32), np.full(sr // 2, 2.0, np.float32)]
    window = plan_windows([1.0, 0.5], gap_s=0.25)[0]
    out = pack(waves, window)
    assert len(out) == int(1.75 * sr)
    assert (out[:sr] == 1.0).all() and (out[sr : sr + sr // 4] == 0.0).all()
    assert (out[int(1.25 * sr) :] == 2.0).all()


def test_segments_from_tokens_pairs_timestamps_and_closes_the_tail() -> None:
    def decode(tokens: list[int]) -> str:
        return "".join(chr(ord("a") + t) for t in tokens)

    # <|0.00|> a b <|1.00|><|1.50|> c <|2.00|> 900(eos-like) d (unclosed)
    tokens = [TS, 0, 1, TS + 50, TS + 75, 2, TS + 100, 900, 3]
    segs = segments_from_tokens(tokens, TS, SPECIAL, decode, end_s=5.0)
    assert segs == [Segment(0.0, 1.0, "ab"), Segment(1.5, 2.0, "c"), Segment(2.0, 5.0, "d")]


def _decode(tokens: list[int]) -> str:
    return "".join(chr(ord("a") + t) for t in tokens)


def _ts(seconds: float) -> int:
    return TS + round(seconds / 0.02)


WINDOW = plan_windows([3.0, 3.0, 2.0], gap_s=1.0)[0]  # spans 0-3, 4-7, 8-10 s


def _attribute(tokens: list[int], speech: list[bool] | None = None):
    return attribute(tokens, TS, SPECIAL, _decode, WINDOW, speech)


def test_attribution_gives_each_segment_to_its_clip_despite_jitter() -> None:
    tokens = [
        _ts(0.0), 0, 1, _ts(3.2),  # ends 0.2 s into the gap
        _ts(3.4), 2, _ts(3.6),  # wholly in the gap, nearer the first clip
        _ts(3.8), 3, 4, _ts(7.2),  # starts 0.2 s early: jitter, not a straddle
        _ts(8.0), 5, _ts(9.9), 900,  # then an end-of-text special
    ]  # fmt: skip
    result = _attribute(tokens)
    assert result == Attribution(("abc", "de", "f"))


def test_attribution_fails_on_a_segment_straddling_a_gap() -> None:
    tokens = [_ts(0.0), 0, 1, _ts(5.0), _ts(8.0), 2, _ts(10.0)]  # 1 s into the second clip
    result = _attribute(tokens)
    assert result.texts == ("", "", "") and result.failure == "segment 0.00-5.00 s straddles clips 0, 1"


def test_attribution_fails_on_an_unclosed_segment_running_over_clips() -> None:
    # text after the last timestamp runs to the window's end (10 s): over the second and third clips
    assert (
        _attribute([_ts(0.0), 0, _ts(3.0), _ts(4.0), 1, 2]).failure
        == "segment 4.00-10.00 s straddles clips 1, 2"
    )
    # starting in the last clip it is that clip's
    assert _attribute([_ts(0.0), 0, _ts(3.0), _ts(4.0), 1, _ts(7.0), _ts(8.0), 2]) == Attribution(
        ("a", "b", "c")
    )


def test_attribution_fails_when_a_clip_with_speech_gets_no_text() -> None:
    tokens = [_ts(0.0), 0, _ts(3.0), _ts(8.0), 1, _ts(10.0)]  # nothing for 4-7 s
    assert _attribute(tokens).failure == "clip(s) 1 with speech got no text"
    assert _attribute(tokens, speech=[True, False, True]) == Attribution(
        ("a", "", "b")
    )  # a silent clip may stay empty


def test_attribution_fails_when_a_silent_clip_gets_text() -> None:
    tokens = [_ts(0.0), 0, _ts(3.0), _ts(4.0), 1, _ts(7.0), _ts(8.0), 2, _ts(10.0)]
    assert _attribute(tokens, speech=[True, False, True]).failure == "3 clips got text, 2 have speech"


def test_attribution_fails_on_timestamps_going_backwards() -> None:
    tokens = [_ts(0.0), 0, _ts(3.0), _ts(4.0), 1, _ts(7.0), _ts(6.0), 2, _ts(10.0)]
    assert _attribute(tokens).failure == "timestamps go backwards (7.00 s then 6.00 s)"


def test_attribution_fails_on_a_timestamp_past_the_window() -> None:
    tokens = [_ts(0.0), 0, _ts(3.0), _ts(4.0), 1, _ts(7.0), _ts(8.0), 2, _ts(11.5)]
    assert _attribute(tokens).failure == "timestamp 11.50 s past the last clip's end (10.00 s)"
    tokens[-1] = _ts(11.0)  # up to END_SLACK_S past the end is jitter
    assert _attribute(tokens) == Attribution(("a", "b", "c"))


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    from asr.models import load_model
    from tests.model_factory import build

    return load_model(build("whisper-tiny", tmp_path_factory.mktemp("tiny")), device="cpu", dtype="fp32")


def test_transcribe_packed_returns_one_text_per_clip_in_order(tiny_whisper, monkeypatch) -> None:
    """Windows are decoded with timestamps, singles the ordinary way; texts land at their input index."""
    from asr.models.whisper import packing as whisper_packing
    from asr.models.whisper.options import WhisperDecodeOptions

    sr = 16000
    rng = np.random.default_rng(0)
    durations = [1.0, 1.5, 29.5, 1.0, 1.0]
    opts = WhisperDecodeOptions(
        max_tokens_per_second=1.0, min_new_tokens=3
    )  # a random model talks to its cap
    waves = [rng.standard_normal(int(d * sr)).astype(np.float32) * 0.1 for d in durations]
    seen: list[tuple[int, ...]] = []
    real_attribute = whisper_packing._attribute_window

    def spy(asr_model, seq, window: Window, ids, options, speech) -> Attribution:
        seen.append(window.indices)
        assert seq and all(isinstance(t, int) for t in seq) and speech == [True] * len(window.indices)
        return Attribution(tuple(f"clip{i}" for i in window.indices))

    monkeypatch.setattr(whisper_packing, "_attribute_window", spy)
    texts = whisper_packing.transcribe_packed(tiny_whisper, waves, opts, durations)
    assert seen == [(0, 1), (3, 4)]
    assert texts[0:2] == ["clip0", "clip1"] and texts[3:] == ["clip3", "clip4"]
    assert texts[2] == tiny_whisper.transcribe([waves[2]], opts, [29.5])[0]

    monkeypatch.setattr(whisper_packing, "_attribute_window", real_attribute)
    texts = whisper_packing.transcribe_packed(tiny_whisper, waves, opts, durations)
    assert len(texts) == 5 and all(isinstance(t, str) for t in texts)


def test_window_caps_sum_the_clips_caps() -> None:
    from asr.models.spec import DecodeOptions
    from asr.models.whisper.packing import TIMESTAMP_TOKENS_PER_CLIP, window_caps

    windows = plan_windows([1.0, 2.5], gap_s=1.0)
    opts = DecodeOptions()
    assert window_caps(windows, opts, 444) == [24 + 42 + 2 * TIMESTAMP_TOKENS_PER_CLIP]
    assert window_caps(windows, opts, 50) == [50]


def test_packed_ct2_decoding_explains_missing_cuda_libraries(tiny_whisper, monkeypatch) -> None:
    """Packed windows go through the same CTranslate2 decoder as single clips, CUDA-error translation included."""
    pytest.importorskip("ctranslate2")
    from asr.errors import ConfigError
    from asr.models.spec import DecodeOptions
    from asr.models.whisper.ct2 import CT2WhisperEngine
    from asr.models.whisper.options import WhisperDecodeOptions
    from asr.models.whisper.packing import transcribe_packed

    class NoCuda:
        def generate(self, *args, **kwargs):
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    engine = object.__new__(CT2WhisperEngine)  # as set_backend("ct2") leaves it on a GPU, minus the model
    engine.model, engine.device, engine.device_index = NoCuda(), "cuda", 0
    monkeypatch.setattr(tiny_whisper, "_ct2", engine)
    waves = [np.zeros(16000, dtype=np.float32), np.zeros(24000, dtype=np.float32)]
    with pytest.raises(ConfigError, match="CUDA 12"):
        transcribe_packed(tiny_whisper, waves, WhisperDecodeOptions())  # one window of both clips
    with pytest.raises(ConfigError, match="CUDA 12"):
        tiny_whisper.transcribe(waves, DecodeOptions())


def test_packing_is_the_default_at_30_s_context_on_ct2_only(tiny_whisper, monkeypatch) -> None:
    """BENCHMARKS.md: ct2 packed no worse and faster; torch packed slower and worse, so opt-in there."""
    from asr.models.whisper.options import WhisperDecodeOptions

    full, auto = WhisperDecodeOptions(audio_context="full"), WhisperDecodeOptions(audio_context="auto")
    assert not tiny_whisper.packs(full)  # torch
    assert tiny_whisper.packs(WhisperDecodeOptions(packing=True))
    monkeypatch.setattr(tiny_whisper, "_ct2", object())  # as set_backend("ct2") leaves it
    assert tiny_whisper.packs(full) and not tiny_whisper.packs(auto)
    assert not tiny_whisper.packs(WhisperDecodeOptions(audio_context="full", packing=False))
    assert not tiny_whisper.packs(WhisperDecodeOptions())  # a stock checkpoint decodes at auto


def test_romanized_clips_are_found_in_cjk_languages_only() -> None:
    from asr.models.whisper.packing_plan import romanized

    texts = ["老板,别人要不要", "Gong-kyo-choo-dong-pan-tien", "Motor Samo 變變更", "", "123"]
    assert romanized(texts, "zh") == [1]
    assert romanized(texts, "en") == [] and romanized(texts, None) == []
