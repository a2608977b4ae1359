"""The funasr family: the shared base (:mod:`.model`), :mod:`.paraformer`, :mod:`.sensevoice`,
and the checkpoint reader/writer (:mod:`.checkpoint`)."""
