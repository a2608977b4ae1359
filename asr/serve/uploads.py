"""A multipart upload streamed to a temp file with a byte limit, and the audio read from it.

The request body is parsed as it arrives (python-multipart's streaming parser): the ``file``
part goes to a temp file in the server's folder, the other fields (a few KiB at most) stay in
memory. The temp file is removed when the ``async with`` ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from asr.data.audio import TARGET_SAMPLE_RATE, AudioError, audio_info, load_audio
from asr.longform.cuts import CutStream
from asr.longform.segments import SegmentOptions
from asr.longform.vad import StreamingVAD
from asr.serve.errors import ApiError

MAX_FIELD_BYTES = 64 * 1024
# After the limit, the rest of a body up to this much is still read (and dropped), so that a
# client that sends before it reads gets the 413 answer instead of a broken connection.
DRAIN_FACTOR = 2


@dataclass
class Upload:
    """The form: its text fields, and the uploaded file (``path`` is None when none was sent)."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str = "file"
    size: int = 0


@dataclass
class Piece:
    """Audio to decode: the whole clip, or one speech piece of a long recording (seconds on its clock)."""

    start: float
    end: float
    wave: np.ndarray


@dataclass
class Audio:
    duration: float
    pieces: list[Piece]
    long_form: bool


def _disposition(value: str) -> tuple[str | None, str | None]:
    _, params = parse_options_header(value)
    name, filename = params.get(b"name"), params.get(b"filename")
    return (
        name.decode("utf-8", "replace") if name is not None else None,
        filename.decode("utf-8", "replace") if filename is not None else None,
    )


def _suffix(filename: str) -> str:
    """The upload's extension when it looks like one (the audio reader chooses by it), else none."""
    suffix = Path(filename).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


class _FormWriter:
    """python-multipart callbacks: the ``file`` part to ``path``, other parts into ``fields``."""

    def __init__(self, upload: Upload, folder: Path, max_bytes: int) -> None:
        self.upload, self.folder, self.max_bytes = upload, folder, max_bytes
        self.header_field, self.header_value = b"", b""
        self.name: str | None = None
        self.disposition = ""
        self.buffer: bytearray | None = None
        self.out = None
        self.too_large = False

    def callbacks(self) -> dict[str, Callable]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda data, start, end: self._add_header(data[start:end], True),
            "on_header_value": lambda data, start, end: self._add_header(data[start:end], False),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.name, self.buffer, self.disposition = None, None, ""

    def _add_header(self, data: bytes, is_field: bool) -> None:
        if is_field:
            self.header_field += data
        else:
            self.header_value += data

    def header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            self.disposition = self.header_value.decode("latin-1")
        self.header_field, self.header_value = b"", b""

    def headers_finished(self) -> None:
        name, filename = _disposition(self.disposition)
        self.name = name
        if name == "file" and self.upload.path is None:
            self.upload.filename = Path(filename or "file").name or "file"
            handle, path = tempfile.mkstemp(
                prefix="upload-", suffix=_suffix(self.upload.filename), dir=self.folder
            )
            self.upload.path = Path(path)
            self.out = os.fdopen(handle, "wb")
        elif filename is None and name:
            self.buffer = bytearray()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None:
            self.upload.size += end - start
            if self.upload.size > self.max_bytes:
                self.too_large = True
                return
            self.out.write(data[start:end])
        elif self.buffer is not None:
            self.buffer += data[start:end]
            if len(self.buffer) > MAX_FIELD_BYTES:
                raise ApiError(
                    400, f"form field {self.name!r} is longer than {MAX_FIELD_BYTES} bytes", param=self.name
                )

    def part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        elif self.buffer is not None and self.name:
            self.upload.fields[self.name] = self.buffer.decode("utf-8", "replace")
        self.buffer = None

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"the upload is larger than the server's limit of {max_bytes / 1e6:g} MB",
                    param="file", code="file_too_large")  # fmt: skip


@contextlib.asynccontextmanager
async def receive_upload(request: Request, folder: Path, max_bytes: int) -> AsyncIterator[Upload]:
    """Parse the multipart body into an :class:`Upload`; 413 past ``max_bytes``; the file removed at the end."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(400, "send the audio as multipart/form-data with a 'file' field", param="file")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_FACTOR * max_bytes + MAX_FIELD_BYTES:
        raise _too_large(max_bytes)
    upload = Upload()
    writer = _FormWriter(upload, folder, max_bytes)
    parser = MultipartParser(params[b"boundary"], writer.callbacks())
    read = 0
    try:
        try:
            async for chunk in request.stream():
                read += len(chunk)
                if writer.too_large:
                    if read > DRAIN_FACTOR * max_bytes + MAX_FIELD_BYTES:
                        break
                    continue
                parser.write(chunk)
            if not writer.too_large:
                parser.finalize()
        except MultipartParseError as err:
            raise ApiError(400, f"malformed multipart body: {err}") from err
        except ClientDisconnect as err:
            raise ApiError(400, "the client disconnected during the upload") from err
        finally:
            writer.close()
        if writer.too_large:
            raise _too_large(max_bytes)
        yield upload
    finally:
        if upload.path is not None:
            upload.path.unlink(missing_ok=True)


class VADPool:
    """StreamingVAD sessions reused across requests (one per concurrent long upload)."""

    def __init__(self) -> None:
        self._free: list[StreamingVAD] = []

    @contextlib.contextmanager
    def session(self) -> Iterator[StreamingVAD]:
        vad = self._free.pop() if self._free else StreamingVAD()
        try:
            yield vad
        finally:
            self._free.append(vad)


def _bad_audio(upload: Upload, reason: str) -> ApiError:
    """400 naming the upload by its own name (the temp file's path is the server's business)."""
    reason = reason.replace(str(upload.path), upload.filename)
    return ApiError(400, f"{upload.filename}: {reason}", param="file", code="invalid_audio")


def _too_long(upload: Upload, seconds: float, limit: float) -> ApiError:
    return ApiError(413, f"{upload.filename}: {seconds:.1f} s of audio is longer than the server's limit of {limit:g} s",
                    param="file", code="audio_too_long")  # fmt: skip


def read_audio(upload: Upload, max_seconds: float, context_seconds: float, vads: VADPool) -> Audio:
    """16 kHz pieces of the upload: the whole clip within the model's context, else VAD pieces
    as ``asr transcribe`` cuts them. Blocking (PyAV, soxr, the VAD): call it in a thread."""
    if upload.path is None:
        raise ApiError(400, "no 'file' field in the form: attach the audio as 'file'", param="file")
    if upload.size == 0:
        raise _bad_audio(upload, "the uploaded file is empty")
    try:
        header = audio_info(upload.path).duration
        if header > max_seconds:
            raise _too_long(upload, header, max_seconds)
        if header <= context_seconds:
            wave = load_audio(upload.path)
            seconds = wave.size / TARGET_SAMPLE_RATE
            if seconds > max_seconds:
                raise _too_long(upload, seconds, max_seconds)
            if wave.size == 0:
                raise _bad_audio(upload, "the file holds no audio samples")
            return Audio(seconds, [Piece(0.0, seconds, wave)], long_form=False)
        pieces = []
        with vads.session() as vad:
            stream = CutStream(upload.path, vad, SegmentOptions(max_seconds=context_seconds))
            for cut in stream:
                if stream.samples > max_seconds * TARGET_SAMPLE_RATE:
                    break
                pieces.append(Piece(*cut.seconds, cut.wave))
        seconds = stream.samples / TARGET_SAMPLE_RATE
        if seconds > max_seconds:
            raise _too_long(upload, seconds, max_seconds)
        return Audio(seconds, pieces, long_form=True)
    except AudioError as err:
        raise _bad_audio(upload, err.reason) from err
