"""Speech encoder + LLM decoder family (Qwen3-ASR, GLM-ASR) through transformers."""
