"""train layer of cs-mage-asr."""
