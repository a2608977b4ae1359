"""``asr serve``: an OpenAI-compatible transcription server (POST /v1/audio/transcriptions).

asr serve --model runs/x/export --port 8000
curl -F file=@clip.wav http://127.0.0.1:8000/v1/audio/transcriptions

Requests that arrive within ``--batch-window-ms`` of each other are decoded together (up to
``--max-batch`` pieces) with the same decoding as ``asr evaluate``; recordings longer than the
model's context are cut at pauses as ``asr transcribe`` does. Ctrl-C (or SIGTERM) stops taking
requests and finishes those in flight.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.arguments import RangeType, non_negative_float, positive_float, positive_int
from asr.errors import ConfigError
from asr.models.base import ASRModel
from asr.models.spec import DecodeOptions
from recipes.evaluate import add_decoding_arguments, decode_options
from recipes.transcribe import add_engine_arguments, load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_engine_arguments(parser)
    add_decoding_arguments(parser, "; a request's prompt replaces it")  # as asr evaluate
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    parser.add_argument("--port", type=RangeType(int, 0, 65535), default=8000, help="0: any free port")
    parser.add_argument(
        "--api-key-file", type=Path, default=None, help="file holding the Bearer key the /v1 routes require"
    )
    parser.add_argument(
        "--batch-window-ms", type=non_negative_float, default=20.0, help="wait this long to gather a batch"
    )
    parser.add_argument("--max-batch", type=positive_int, default=16, help="most audio pieces per model call")
    parser.add_argument(
        "--max-upload-mb", type=positive_float, default=25.0, help="largest upload (413 past it)"
    )
    parser.add_argument(
        "--max-audio-seconds", type=positive_float, default=3 * 3600.0, help="longest audio (413 past it)"
    )
    parser.add_argument(
        "--max-queue", type=positive_int, default=64, help="most requests in progress (429 past it)"
    )
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=None,
        help="folder for uploads being read (default: a fresh temp folder)",
    )


def read_key(path: Path) -> str:
    """The API key: the file's first line, stripped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"--api-key-file {path}: {err.strerror or err}") from err
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not key:
        raise ConfigError(f"--api-key-file {path}: the file is empty")
    return key


def model_id(model: str) -> str:
    """The name ``/v1/models`` gives: a registered name as is, a checkpoint folder by its name."""
    path = Path(model)
    return path.resolve().name if path.is_dir() else model


def load_for_serving(args: argparse.Namespace) -> tuple[ASRModel, DecodeOptions]:
    """The model and its decoding options, built by ``asr evaluate``'s own function from the same flags."""
    model, _ = load(args)
    return model, decode_options(args, model)


def run(args: argparse.Namespace) -> int:
    key = read_key(args.api_key_file) if args.api_key_file else None
    try:
        # FastAPI, uvicorn and python-multipart are the optional ``serve`` extra.
        from asr.serve.app import ServeSettings, create_app
        from asr.serve.server import bind, serve
    except ImportError as err:
        raise ConfigError(
            f"asr serve needs the serve extra ({err}): pip install 'cs-mage-asr[serve]'"
        ) from err
    sock = bind(args.host, args.port)  # before loading the model: a taken port fails at once
    model, options = load_for_serving(args)
    settings = ServeSettings(
        batch_window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
        max_upload_mb=args.max_upload_mb,
        max_audio_seconds=args.max_audio_seconds,
        max_queue=args.max_queue,
        api_key=key,
        tmp_dir=args.tmp_dir,
    )
    host, port = sock.getsockname()[:2]
    print(
        f"serving {model_id(args.model)} on http://{host}:{port} (OpenAI API under /v1; Ctrl-C stops)",
        flush=True,
    )
    serve(create_app(model, options, model_id(args.model), settings), sock)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
