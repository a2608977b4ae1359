"""Fine-tuning engine behind ``asr finetune`` (transformers Trainer + peft, family-agnostic).

- :mod:`asr.train.config`: :class:`FinetuneConfig` (YAML + ``key=value`` overrides),
- :mod:`asr.train.run`: :func:`finetune`, the whole procedure and its outputs,
- :mod:`asr.train.trainer`: the Trainer subclass (loss, sampler, CER validation, checkpoints),
- :mod:`asr.train.dataset` / :mod:`asr.train.augment`: data, length-grouped sampling, speed perturbation,
- :mod:`asr.train.reporting`: ``train_log.jsonl``, the training curve, summary helpers.
"""
