"""The CTC family (wav2vec2 / XLS-R): model and character vocabulary."""
