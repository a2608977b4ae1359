"""Whisper tokenizer, feature extractor and generation config built offline.

The BPE ranks come from the ``openai-whisper`` package (``whisper/assets/*.tiktoken``);
special tokens are added in OpenAI's order, so ids equal ``whisper.tokenizer``'s.
Nothing is downloaded.

>>> tok = whisper_tokenizer()
>>> tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|zh|>", "<|transcribe|>"])
[50258, 50260, 50359]
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
from functools import lru_cache
from pathlib import Path
from typing import Any

from asr.errors import ASRError

# OpenAI's order: a language's token id is ``<|startoftranscript|> + 1 + index``.
LANGUAGES: dict[str, str] = {
    "en": "english",
    "zh": "chinese",
    "de": "german",
    "es": "spanish",
    "ru": "russian",
    "ko": "korean",
    "fr": "french",
    "ja": "japanese",
    "pt": "portuguese",
    "tr": "turkish",
    "pl": "polish",
    "ca": "catalan",
    "nl": "dutch",
    "ar": "arabic",
    "sv": "swedish",
    "it": "italian",
    "id": "indonesian",
    "hi": "hindi",
    "fi": "finnish",
    "vi": "vietnamese",
    "he": "hebrew",
    "uk": "ukrainian",
    "el": "greek",
    "ms": "malay",
    "cs": "czech",
    "ro": "romanian",
    "da": "danish",
    "hu": "hungarian",
    "ta": "tamil",
    "no": "norwegian",
    "th": "thai",
    "ur": "urdu",
    "hr": "croatian",
    "bg": "bulgarian",
    "lt": "lithuanian",
    "la": "latin",
    "mi": "maori",
    "ml": "malayalam",
    "cy": "welsh",
    "sk": "slovak",
    "te": "telugu",
    "fa": "persian",
    "lv": "latvian",
    "bn": "bengali",
    "sr": "serbian",
    "az": "azerbaijani",
    "sl": "slovenian",
    "kn": "kannada",
    "et": "estonian",
    "mk": "macedonian",
    "br": "breton",
    "eu": "basque",
    "is": "icelandic",
    "hy": "armenian",
    "ne": "nepali",
    "mn": "mongolian",
    "bs": "bosnian",
    "kk": "kazakh",
    "sq": "albanian",
    "sw": "swahili",
    "gl": "galician",
    "mr": "marathi",
    "pa": "punjabi",
    "si": "sinhala",
    "km": "khmer",
    "sn": "shona",
    "yo": "yoruba",
    "so": "somali",
    "af": "afrikaans",
    "oc": "occitan",
    "ka": "georgian",
    "be": "belarusian",
    "tg": "tajik",
    "sd": "sindhi",
    "gu": "gujarati",
    "am": "amharic",
    "yi": "yiddish",
    "lo": "lao",
    "uz": "uzbek",
    "fo": "faroese",
    "ht": "haitian creole",
    "ps": "pashto",
    "tk": "turkmen",
    "nn": "nynorsk",
    "mt": "maltese",
    "sa": "sanskrit",
    "lb": "luxembourgish",
    "my": "myanmar",
    "bo": "tibetan",
    "tl": "tagalog",
    "mg": "malagasy",
    "as": "assamese",
    "tt": "tatar",
    "haw": "hawaiian",
    "ln": "lingala",
    "ha": "hausa",
    "ba": "bashkir",
    "jw": "javanese",
    "su": "sundanese",
    "yue": "cantonese",  # only in 100-language models (large-v3 and later)
}

_TASK_TOKENS = ("<|translate|>", "<|transcribe|>")
_AFTER_TASK_TOKENS = ("<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>")
_N_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|> in 0.02 s steps
_N_SPECIAL_FIXED = 2 + len(_TASK_TOKENS) + len(_AFTER_TASK_TOKENS) + _N_TIMESTAMPS
_MULTILINGUAL_BPE = 50257  # BPE tokens in multilingual.tiktoken
_ENGLISH_BPE = 50256  # BPE tokens in gpt2.tiktoken


def _asset(name: str) -> Path:
    # find_spec locates the package without importing it (importing `whisper` loads torch models code).
    spec = importlib.util.find_spec("whisper")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for root in locations:
        path = Path(root) / "assets" / name
        if path.is_file():
            return path
    raise ASRError(
        f"Whisper tokenizer asset {name} not found (it ships with openai-whisper): "
        "pip install openai-whisper==20250625"
    )


def special_tokens(num_languages: int = 99) -> list[str]:
    """Whisper's special tokens in id order (the first follows the BPE vocabulary)."""
    if not 1 <= num_languages <= len(LANGUAGES):
        raise ASRError(f"num_languages must be in 1..{len(LANGUAGES)}, got {num_languages}")
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{code}|>" for code in list(LANGUAGES)[:num_languages]],
        *_TASK_TOKENS,
        *_AFTER_TASK_TOKENS,
        *timestamp_tokens(),
    ]


def timestamp_tokens() -> list[str]:
    """``<|0.00|>`` .. ``<|30.00|>``."""
    return [f"<|{i * 0.02:.2f}|>" for i in range(_N_TIMESTAMPS)]


def vocab_layout(vocab_size: int) -> tuple[bool, int]:
    """``(multilingual, num_languages)`` of a Whisper model with ``vocab_size`` tokens.

    >>> vocab_layout(51865), vocab_layout(51866), vocab_layout(51864)
    ((True, 99), (True, 100), (False, 99))
    """
    for multilingual, n_bpe in ((True, _MULTILINGUAL_BPE), (False, _ENGLISH_BPE)):
        num_languages = vocab_size - n_bpe - _N_SPECIAL_FIXED
        # English-only models keep the 99 language tokens; multilingual ones have 99 or 100.
        if (multilingual and num_languages in (99, 100)) or (not multilingual and num_languages == 99):
            return multilingual, num_languages
    raise ASRError(f"vocabulary size {vocab_size} does not match any Whisper tokenizer (51864, 51865, 51866)")


@lru_cache(maxsize=4)
def _build_tokenizer(multilingual: bool, num_languages: int) -> Any:
    from tokenizers import AddedToken
    from transformers import WhisperTokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter

    path = str(_asset("multilingual.tiktoken" if multilingual else "gpt2.tiktoken"))
    try:
        vocab, merges = TikTokenConverter(path).extract_vocab_merges_from_model(path)
    except Exception as err:  # tiktoken raises bare ValueErrors/KeyErrors on corrupt files
        raise ASRError(f"{path}: cannot read the Whisper BPE ranks: {err}") from err
    n_bpe = _MULTILINGUAL_BPE if multilingual else _ENGLISH_BPE
    if len(vocab) != n_bpe:
        raise ASRError(f"{path}: expected {n_bpe} BPE tokens, found {len(vocab)}")
    tok = WhisperTokenizer(vocab=vocab, merges=merges, pad_token="<|endoftext|>", model_max_length=1024)
    specials = special_tokens(num_languages)
    n_timestamps = len(timestamp_tokens())
    # As in the Hub tokenizers: control tokens are special, timestamps are plain added tokens
    # (WhisperTokenizer finds the first timestamp id as ``all_special_ids[-1] + 1``).
    tok.add_special_tokens(
        {
            "additional_special_tokens": [
                AddedToken(t, special=True, normalized=False) for t in specials[1:-n_timestamps]
            ]
        }
    )
    tok.add_tokens([AddedToken(t, special=False, normalized=True) for t in specials[-n_timestamps:]])
    ids = tok.convert_tokens_to_ids(specials)
    if ids != list(range(n_bpe, n_bpe + len(specials))):
        raise ASRError(
            f"{path}: special token ids do not follow the BPE vocabulary; the asset looks modified"
        )
    tok.set_prefix_tokens()  # the template built in __init__ predates the special tokens
    return tok


def whisper_tokenizer(multilingual: bool = True, num_languages: int = 99) -> Any:
    """A fresh ``WhisperTokenizerFast`` (ids as OpenAI's), built from openai-whisper's asset.

    ``num_languages`` is 99 for tiny..large-v2 and 100 (adds ``<|yue|>``) for large-v3.
    The build is cached per process; each call returns an independent copy.
    """
    return copy.deepcopy(_build_tokenizer(multilingual, num_languages if multilingual else 99))


def whisper_feature_extractor(num_mel_bins: int = 80) -> Any:
    """Log-mel extractor: 16 kHz, 25 ms window, 10 ms hop, 30 s chunks (80 or 128 bins)."""
    from transformers import WhisperFeatureExtractor

    if num_mel_bins not in (80, 128):
        raise ASRError(f"Whisper uses 80 or 128 mel bins, got {num_mel_bins}")
    return WhisperFeatureExtractor(feature_size=num_mel_bins)


def whisper_processor(num_mel_bins: int = 80, multilingual: bool = True, num_languages: int = 99) -> Any:
    """``WhisperProcessor`` = feature extractor + tokenizer, both offline."""
    from transformers import WhisperProcessor

    return WhisperProcessor(
        feature_extractor=whisper_feature_extractor(num_mel_bins),
        tokenizer=whisper_tokenizer(multilingual, num_languages),
    )


def _non_speech_tokens(tok: Any) -> set[int]:
    """Port of ``whisper.tokenizer.Tokenizer.non_speech_tokens`` on a transformers tokenizer."""

    def encode(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False)

    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += [
        "<<",
        ">>",
        "<<<",
        ">>>",
        "--",
        "---",
        "-(",
        "-[",
        "('",
        '("',
        "((",
        "))",
        "(((",
        ")))",
        "[[",
        "]]",
        "{{",
        "}}",
        "♪♪",
        "♪♪♪",
    ]
    miscellaneous = set("♩♪♫♬♭♮♯")
    result = {encode(" -")[0], encode(" '")[0]}
    for symbol in symbols + sorted(miscellaneous):
        for tokens in (encode(symbol), encode(" " + symbol)):
            if len(tokens) == 1 or symbol in miscellaneous:
                result.add(tokens[0])
    return result


def whisper_generation_config(model_config: Any, alignment_heads: list[list[int]] | None = None) -> Any:
    """``GenerationConfig`` for a Whisper model, as on the Hub, without ``forced_decoder_ids``.

    Suppressed tokens follow OpenAI's decoding defaults (non-speech symbols plus the
    control tokens). ``alignment_heads`` defaults to every head of the upper half of the
    decoder layers (OpenAI's fallback).
    """
    from transformers import GenerationConfig

    multilingual, num_languages = vocab_layout(int(model_config.vocab_size))
    tok = _build_tokenizer(multilingual, num_languages)

    def tid(token: str) -> int:
        return int(tok.convert_tokens_to_ids(token))

    eot, sot = tid("<|endoftext|>"), tid("<|startoftranscript|>")
    control = ["<|translate|>", "<|transcribe|>", "<|startoftranscript|>", "<|startofprev|>", "<|startoflm|>"]
    suppress = _non_speech_tokens(tok) | {tid(t) for t in [*control, "<|nospeech|>"]}
    if alignment_heads is None:
        layers, heads = int(model_config.decoder_layers), int(model_config.decoder_attention_heads)
        alignment_heads = [list(p) for p in itertools.product(range(layers // 2, layers), range(heads))]
    lang_to_id = {f"<|{code}|>": tid(f"<|{code}|>") for code in list(LANGUAGES)[:num_languages]}
    return GenerationConfig(
        alignment_heads=[list(map(int, h)) for h in alignment_heads],
        begin_suppress_tokens=[tok.encode(" ", add_special_tokens=False)[0], eot],
        bos_token_id=eot,
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        forced_decoder_ids=None,
        is_multilingual=multilingual,
        lang_to_id=lang_to_id if multilingual else {},
        task_to_id={"transcribe": tid("<|transcribe|>"), "translate": tid("<|translate|>")},
        max_initial_timestamp_index=50,
        max_length=448,
        no_timestamps_token_id=tid("<|notimestamps|>"),
        prev_sot_token_id=tid("<|startofprev|>"),
        return_timestamps=False,
        suppress_tokens=sorted(suppress),
    )
