"""data layer of cs-mage-asr."""
