"""The Whisper family: model, decoding backends (torch, CTranslate2), audio context, caches, assets, CT2 import."""
