"""The ``evaluate`` metric module of CS-Mage CER (``hf_cer.py``); load it with :func:`asr.metrics.hf_metric`."""
