"""text layer of cs-mage-asr."""
