"""VAD boundaries on synthetic speech with known pauses; the stream equals whole-file decoding."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from asr.data.audio import load_audio, write_wav
from asr.longform.cuts import CutStream
from asr.longform.media import stream_audio
from asr.longform.segments import FRAME_SECONDS, SegmentOptions
from asr.longform.vad import StreamingVAD
from tests.longform_media import demo_clips, join


@pytest.fixture(scope="module")
def vad() -> StreamingVAD:
    return StreamingVAD()


def test_pieces_start_and_end_at_the_speech_within_a_few_vad_frames(
    tmp_path: Path, vad: StreamingVAD
) -> None:
    rec = join(demo_clips(24), pauses=[0.8, 1.5, 2.5])
    path = write_wav(tmp_path / "speech.wav", rec.audio)
    # no padding, and pauses inside a sentence (< 0.5 s) do not end a piece, the 0.8 s ones do
    stream = CutStream(path, vad, SegmentOptions(pad_ms=0, max_gap_seconds=0.5))
    found = [cut.seconds for cut in stream]
    assert len(found) == len(rec.speech) == 24
    starts = np.array([f[0] - s[0] for f, s in zip(found, rec.speech, strict=True)]) / FRAME_SECONDS
    ends = np.array([f[1] - s[1] for f, s in zip(found, rec.speech, strict=True)]) / FRAME_SECONDS
    # a piece starts on the frame where speech begins (silero scores 32 ms frames, +/- its context)
    assert starts.min() >= -1 and starts.max() <= 3, starts
    # and ends once the probability has fallen (the model lags speech by about 3 frames)
    assert ends.min() >= 0 and ends.max() <= 5, ends
    assert stream.samples == rec.audio.size


def test_cut_out_pauses_leave_the_speech_and_fewer_pieces(tmp_path: Path, vad: StreamingVAD) -> None:
    rec = join(demo_clips(24), pauses=[1.5])
    path = write_wav(tmp_path / "speech.wav", rec.audio)
    whole = list(CutStream(path, vad, SegmentOptions()))
    short = list(CutStream(path, vad, SegmentOptions(max_pause_seconds=0.4)))
    assert len(short) < len(whole) and all(c.wave.size <= 30 * 16000 for c in short)
    assert all(c.wave.size == c.end - c.start for c in whole)
    assert all(c.wave.size < c.end - c.start for c in short[:-1])  # each held a 1.5 s pause
    assert short[0].start == whole[0].start and short[-1].end == whole[-1].end
    audio = load_audio(path)
    for cut in short:  # its audio is whole 32 ms frames of the file, in order, first and last kept
        file_frames = audio[cut.start : cut.end].reshape(-1, 512)
        where = {f.tobytes(): n for n, f in enumerate(file_frames)}
        order = [where[f.tobytes()] for f in cut.wave.reshape(-1, 512)]
        assert order[0] == 0 and order[-1] == len(file_frames) - 1
        assert all(b > a for a, b in itertools.pairwise(order))
        pauses = [b - a - 1 for a, b in itertools.pairwise(order) if b > a + 1]
        assert pauses and all(p * FRAME_SECONDS > 1.0 for p in pauses)  # only the long pauses shrank


def test_silence_and_noise_give_no_pieces(tmp_path: Path, vad: StreamingVAD) -> None:
    noise = 0.01 * np.random.default_rng(1).standard_normal(16000 * 20).astype(np.float32)
    path = write_wav(tmp_path / "noise.wav", noise)
    assert list(CutStream(path, vad, SegmentOptions())) == []


def test_streamed_probabilities_equal_silero_on_the_whole_file(vad: StreamingVAD) -> None:
    from silero_vad import load_silero_vad

    audio = join(demo_clips(3), pauses=[0.7]).audio
    whole = load_silero_vad(sequence=True).audio_forward(audio)
    vad.reset()
    parts = [vad.push(audio[i : i + 3001]) for i in range(0, audio.size, 3001)]
    streamed = np.concatenate([*parts, vad.push(np.zeros(0, np.float32), last=True)])
    np.testing.assert_array_equal(streamed, whole)


def test_a_44k_stereo_stream_matches_whole_file_decoding(tmp_path: Path) -> None:
    t = np.arange(44100 * 7) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 300 * t)], axis=1)
    path = write_wav(tmp_path / "stereo.wav", stereo.astype(np.float32), sample_rate=44100)
    blocks = list(stream_audio(path, block_samples=10000))
    assert [b.size for b in blocks[:-1]] == [10000] * (len(blocks) - 1)
    streamed, whole = np.concatenate(blocks), load_audio(path)
    assert abs(streamed.size - whole.size) <= 1
    n = min(streamed.size, whole.size)
    assert np.abs(streamed[:n] - whole[:n])[100:-100].max() < 1e-3
