"""``asr serve``: an OpenAI-compatible transcription server with cross-request batching.

:mod:`asr.serve.app` (FastAPI routes), :mod:`asr.serve.batcher` (the decoding worker),
:mod:`asr.serve.uploads` (streamed uploads, audio into pieces), :mod:`asr.serve.metrics`
(Prometheus text), :mod:`asr.serve.server` (uvicorn). FastAPI, uvicorn and python-multipart
come with the ``serve`` extra.
"""
