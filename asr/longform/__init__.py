"""Long recordings: streaming decode, voice activity detection, segments, batched transcription.

``asr transcribe`` (subtitles of whole videos) and ``asr segment`` (new CS-Mage-style clips)
share one path: :mod:`media` streams 16 kHz mono blocks, :mod:`vad` scores them with
silero-vad, :mod:`segments` cuts speech into pieces no longer than the model's context, and
:mod:`pipeline` batches the pieces of many files through ``ASRModel.transcribe``.
"""
