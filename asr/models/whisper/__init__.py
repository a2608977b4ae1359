"""The Whisper family: model, decoding backends (torch, CTranslate2), audio context, caches, assets, CT2 import.

- :mod:`.model`: :class:`~.model.WhisperASR`; :mod:`.decoding`: the one decoding interface
  (its transformers backend), :mod:`.ct2`: the CTranslate2 conversion and backend;
  :mod:`.packing`/:mod:`.packing_plan`: short clips packed into 30 s windows.
- :mod:`.context`: the audio context; :mod:`.cross_kv`: cached cross-attention keys/values.
- :mod:`.assets`: offline tokenizer and generation config.
- CTranslate2 import: :mod:`.ct2_reader` (``model.bin``), :mod:`.ct2_source` (where it comes from),
  :mod:`.ct2_mapping` (weight names), :mod:`.ct2_import` (the installer).
"""
