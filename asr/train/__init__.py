"""Fine-tuning engine behind ``asr finetune`` (transformers Trainer + peft, family-agnostic).

- :mod:`asr.train.finetune_config`: :class:`FinetuneConfig` (YAML + ``key=value`` overrides),
- :mod:`asr.train.recipe`: :class:`FinetuneRecipe` (setup, train, report) and :func:`finetune`,
- :mod:`asr.train.preflight`: checks before any compute (model, device, DeepSpeed, vocabulary),
- :mod:`asr.train.splits`: the checked train/validation/test manifests,
- :mod:`asr.train.model_setup`: trainable parameters, learning rate, memory switches,
- :mod:`asr.train.training_args`: the transformers ``TrainingArguments``,
- :mod:`asr.train.resume`: resume point, incomplete checkpoints, log truncation, resolved ``config.yaml``,
- :mod:`asr.train.trainer`: the Trainer subclass (loss, sampler, CER validation, checkpoints),
- :mod:`asr.train.dataset` / :mod:`asr.train.augment`: data, length-grouped sampling, speed perturbation,
- :mod:`asr.train.reporting`: ``train_log.jsonl`` and the training curve.
"""
