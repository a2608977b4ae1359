"""export layer of cs-mage-asr."""
