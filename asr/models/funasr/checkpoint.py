"""funasr model directories, read and written without ``AutoModel``.

A funasr directory (ModelScope / Hugging Face layout) holds ``config.yaml`` (model class,
``model_conf``, encoder/decoder/predictor confs, ``frontend_conf``, ``tokenizer_conf``),
``model.pt`` (a torch pickle of the state dict), the token list (``tokens.json`` or
``tokens.txt``, plus ``seg_dict`` for Paraformer's English words) or a sentencepiece model
(SenseVoice), and ``am.mvn`` (global CMVN of the LFR features). ``configuration.json`` may
map those roles to other file names (``file_path_metas``), as on ModelScope.

:func:`write_model_dir` writes the same layout with conventional names (``tokens.json``,
``seg_dict``, ``bpe.model``, ``am.mvn``) and the weights as ``model.safetensors``;
:func:`write_native_weights` adds the ``model.pt`` that funasr's own ``AutoModel`` insists on.

>>> d = read_model_dir(Path("SenseVoiceSmall"))  # doctest: +SKIP
>>> d.config["model"], d.weights.name  # doctest: +SKIP
('SenseVoiceSmall', 'model.pt')
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import yaml

from asr.errors import ModelSourceError

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
SAFETENSORS_FILE = "model.safetensors"
NATIVE_WEIGHTS_FILE = "model.pt"
TOKENS_FILE = "tokens.json"
SEG_DICT_FILE = "seg_dict"
BPE_FILE = "bpe.model"
CMVN_FILE = "am.mvn"

# tokenizer_conf / frontend_conf keys that name files, and where write_model_dir puts them
_TOKENIZER_FILE_KEYS = {"token_list": TOKENS_FILE, "seg_dict": SEG_DICT_FILE, "bpemodel": BPE_FILE}
_FRONTEND_FILE_KEYS = {"cmvn_file": CMVN_FILE}


@lru_cache(maxsize=1)
def funasr_tables() -> Any:
    """funasr's class registry. The first call imports all of funasr (10-30 s on a busy CPU).

    funasr prints an ffmpeg notice on stdout while importing; it goes to the debug log instead.
    """
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        import funasr  # noqa: F401  (registers every model, frontend and tokenizer class)
    if captured.getvalue().strip():
        log.debug("funasr import said: %s", captured.getvalue().strip())
    from funasr.register import tables

    return tables


@dataclass
class ModelDir:
    """A funasr directory, resolved: the config and absolute paths of every file it needs."""

    path: Path
    config: dict[str, Any]
    tokenizer_conf: dict[str, Any]
    frontend_conf: dict[str, Any]
    weights: Path | None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ModelSourceError(f"{path}: unreadable funasr config ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        raise ModelSourceError(f"{path}: not a funasr config (expected a mapping with a 'model' class name)")
    return data


def _file_path_metas(path: Path) -> dict[str, Any] | None:
    meta = path / "configuration.json"
    if not meta.is_file():
        return None
    try:
        metas = json.loads(meta.read_text(encoding="utf-8")).get("file_path_metas")
    except (OSError, ValueError) as err:
        raise ModelSourceError(f"{meta}: unreadable ({err})") from err
    return metas if isinstance(metas, dict) else None


def _conventional_files(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """What funasr itself picks up from a directory without ``configuration.json``."""
    tok: dict[str, str] = {}
    for name in ("tokens.txt", TOKENS_FILE):  # funasr lets tokens.json win
        if (path / name).is_file():
            tok["token_list"] = str(path / name)
    if (path / SEG_DICT_FILE).is_file():
        tok["seg_dict"] = str(path / SEG_DICT_FILE)
    if (path / BPE_FILE).is_file():
        tok["bpemodel"] = str(path / BPE_FILE)
    fe = {"cmvn_file": str(path / CMVN_FILE)} if (path / CMVN_FILE).is_file() else {}
    return tok, fe


def _resolve_relative(conf: dict[str, Any], keys: set[str], path: Path, where: str) -> None:
    for key in keys:
        value = conf.get(key)
        if not isinstance(value, str) or not value:
            continue
        candidate = Path(value) if Path(value).is_absolute() else path / value
        if not candidate.is_file():
            raise ModelSourceError(f"{path / CONFIG_FILE}: {where}.{key} names {value}, which does not exist")
        conf[key] = str(candidate)


def read_model_dir(path: Path) -> ModelDir:
    """Resolve the config, tokenizer/frontend files and weights of a funasr directory."""
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise ModelSourceError(f"{path}: no {CONFIG_FILE}; not a funasr model directory")
    config = _read_yaml(config_path)
    tok = dict(config.get("tokenizer_conf") or {})
    fe = dict(config.get("frontend_conf") or {})
    metas = _file_path_metas(path)
    weights_name = None
    if metas is not None:
        for conf, key in ((tok, "tokenizer_conf"), (fe, "frontend_conf")):
            for k, v in (metas.get(key) or {}).items():
                if isinstance(v, str) and (path / v).is_file():
                    conf[k] = str(path / v)
        weights_name = metas.get("init_param") if isinstance(metas.get("init_param"), str) else None
    else:
        found_tok, found_fe = _conventional_files(path)
        tok.update(found_tok)
        fe.update(found_fe)
    _resolve_relative(tok, {"token_list", "seg_dict", "seg_dict_file", "bpemodel"}, path, "tokenizer_conf")
    _resolve_relative(fe, {"cmvn_file"}, path, "frontend_conf")
    weights = None
    for name in (SAFETENSORS_FILE, weights_name, NATIVE_WEIGHTS_FILE):
        if name and (path / name).is_file():
            weights = path / name
            break
    return ModelDir(path=path, config=config, tokenizer_conf=tok, frontend_conf=fe, weights=weights)


def _unwrap_state(obj: Any, source: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model_state_dict", "model"):  # funasr training checkpoints nest it
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ModelSourceError(f"{source}: expected a state dict, found {type(obj).__name__}")
    state = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            state[key[len("module.") :] if key.startswith("module.") else key] = value
    if not state:
        raise ModelSourceError(f"{source}: holds no tensors")
    return state


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Weights from ``model.safetensors`` or a tensors-only ``model.pt`` (other pickles are refused)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:
            raise ModelSourceError(f"{path}: unreadable safetensors file ({err})") from err
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for disallowed globals, others for corrupt files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelSourceError(
            f"{path}: refusing to load: not a plain tensor checkpoint ({first}). funasr's model.pt is a "
            "pickle; only state dicts of tensors are accepted (torch.load(weights_only=True))"
        ) from err
    return _unwrap_state(obj, path)


def apply_state(net: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``state`` into ``net``; missing parameters or shape mismatches are errors."""
    own = net.state_dict()
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        k = wrong[0]
        raise ModelSourceError(
            f"{source}: {len(wrong)} tensors do not fit config.yaml, e.g. {k} is "
            f"{tuple(state[k].shape)} in the file but {tuple(own[k].shape)} in the model"
        )
    missing, unexpected = net.load_state_dict(state, strict=False)
    params = {name for name, _ in net.named_parameters()}
    missing_params = [k for k in missing if k in params]
    if missing_params:
        raise ModelSourceError(
            f"{source}: {len(missing_params)} parameters missing, e.g. {', '.join(missing_params[:3])}"
        )
    if missing:
        log.warning("%s: buffers not in the checkpoint (kept at init): %s", source, ", ".join(missing[:5]))
    if unexpected:
        log.warning(
            "%s: ignoring %d tensors the model does not use, e.g. %s", source, len(unexpected), unexpected[0]
        )


def _copy(src: str | None, dst: Path) -> bool:
    if not src:
        return False
    if Path(src).resolve() != dst.resolve():
        shutil.copyfile(src, dst)
    return True


def write_model_dir(
    out_dir: Path,
    src: ModelDir,
    state: dict[str, torch.Tensor],
    token_list: list[str] | None,
) -> None:
    """Write config.yaml, tokenizer/CMVN files and ``model.safetensors`` in funasr's layout.

    File paths in the config become the local conventional names, which is also what funasr's
    ``AutoModel`` looks for in a directory without ``configuration.json``.
    """
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(src.config)
    tok = {k: v for k, v in src.tokenizer_conf.items() if k not in (*_TOKENIZER_FILE_KEYS, "seg_dict_file")}
    if token_list is not None:
        (out_dir / TOKENS_FILE).write_text(json.dumps(token_list, ensure_ascii=False), encoding="utf-8")
        tok["token_list"] = TOKENS_FILE
    if _copy(
        src.tokenizer_conf.get("seg_dict") or src.tokenizer_conf.get("seg_dict_file"), out_dir / SEG_DICT_FILE
    ):
        tok["seg_dict"] = SEG_DICT_FILE
    if _copy(src.tokenizer_conf.get("bpemodel"), out_dir / BPE_FILE):
        tok["bpemodel"] = BPE_FILE
    fe = {k: v for k, v in src.frontend_conf.items() if k not in _FRONTEND_FILE_KEYS}
    fe["cmvn_file"] = CMVN_FILE if _copy(src.frontend_conf.get("cmvn_file"), out_dir / CMVN_FILE) else None
    config["tokenizer_conf"] = tok
    config["frontend_conf"] = fe
    config.pop("init_param", None)
    (out_dir / CONFIG_FILE).write_text(
        yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    # safetensors refuses shared storage; clone so every tensor owns its memory
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(out_dir / SAFETENSORS_FILE), metadata={"format": "pt"})
    for stale in (NATIVE_WEIGHTS_FILE, "configuration.json"):
        # an old model.pt would make funasr load outdated weights; an old configuration.json could
        # point it at other files (or none: it then builds the model without any weights)
        if (out_dir / stale).is_file():
            log.warning(
                "%s: removing stale %s (run write_native_weights / export for funasr)", out_dir, stale
            )
            (out_dir / stale).unlink()


def write_native_weights(model_dir: Path) -> Path:
    """Write ``model.pt`` (``torch.save`` of a tensors-only state dict) next to ``model.safetensors``.

    funasr's ``AutoModel(model=dir)`` requires ``model.pt`` and reads it with ``torch.load``;
    it cannot read safetensors.
    """
    src = model_dir / SAFETENSORS_FILE
    if not src.is_file():
        raise ModelSourceError(f"{model_dir}: no {SAFETENSORS_FILE} to convert")
    out = model_dir / NATIVE_WEIGHTS_FILE
    torch.save(dict(load_state(src)), str(out))
    return out
