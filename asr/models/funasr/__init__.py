"""The funasr family (Paraformer, SenseVoice): model and checkpoint reader."""
