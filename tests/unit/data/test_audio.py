import numpy as np
import pytest
import soundfile as sf

from asr.data.audio import AudioInfo, audio_info, extract_audio, load_audio, write_wav
from asr.errors import DataError


def test_audio_info_reads_the_wav_header(tmp_path, make_wav):
    path = make_wav(tmp_path / "a.wav", seconds=1.25, sample_rate=8000, channels=2)
    assert audio_info(path) == AudioInfo(sample_rate=8000, channels=2, frames=10000, duration=1.25)


def test_load_audio_downmixes_and_resamples(tmp_path, make_wav):
    path = make_wav(tmp_path / "stereo8k.wav", seconds=1.0, sample_rate=8000, channels=2)
    samples = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 16000) <= 1
    assert np.abs(samples).max() <= 1.0
    assert 0.2 < np.abs(samples).max() < 0.4  # the 0.3 tone survives downmix and resampling


def test_load_audio_keeps_native_16k(tmp_path, make_wav):
    path = make_wav(tmp_path / "a.wav", seconds=0.5)
    expected, _ = sf.read(str(path), dtype="float32")
    np.testing.assert_array_equal(load_audio(path), expected)


def test_load_audio_decodes_video_with_pyav(tmp_path, make_video):
    path = make_video(tmp_path / "clip.mp4", seconds=1.0, sample_rate=22050)
    samples = load_audio(path, sample_rate=16000)
    assert samples.dtype == np.float32
    assert 15000 < samples.size < 17500  # AAC adds priming/padding samples
    assert np.abs(samples).max() > 0.1
    info = audio_info(path)
    assert info.sample_rate == 22050 and info.channels == 1 and 0.9 < info.duration < 1.2


def test_extract_audio_writes_16k_mono_pcm16_atomically(tmp_path, make_video):
    src = make_video(tmp_path / "clip.mkv", seconds=0.6, sample_rate=44100)
    dst = extract_audio(src, tmp_path / "out" / "clip.wav")
    info = sf.info(str(dst))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert [p.name for p in dst.parent.iterdir()] == ["clip.wav"]  # no temporary left behind


def test_unreadable_audio_names_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEnot really")
    for call in (audio_info, load_audio):
        with pytest.raises(
            DataError, match=r"bad\.wav: not a decodable audio file: a WAV file with a damaged"
        ):
            call(bad)
    fake_video = tmp_path / "bad.mp4"
    fake_video.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match=r"bad\.mp4: not a decodable audio file: only zero bytes"):
        load_audio(fake_video)
    with pytest.raises(DataError, match=r"nothing\.wav: audio file not found"):
        load_audio(tmp_path / "nothing.wav")


def test_video_without_audio_stream_is_a_data_error(tmp_path):
    import av

    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(DataError, match=r"silent\.mp4: no audio stream"):
        load_audio(path)
    with pytest.raises(DataError, match=r"silent\.mp4: no audio stream"):
        audio_info(path)


def test_write_wav_clips_nothing_and_roundtrips(tmp_path):
    samples = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    path = write_wav(tmp_path / "x.wav", samples)
    np.testing.assert_allclose(load_audio(path), samples, atol=1 / 32768)


def test_write_wav_failure_leaves_nothing_behind(tmp_path):
    with pytest.raises(Exception):  # noqa: B017 - soundfile's error type for a bad rate
        write_wav(tmp_path / "x.wav", np.zeros(16, dtype=np.float32), sample_rate=0)
    assert list(tmp_path.iterdir()) == []
