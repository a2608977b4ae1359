"""cs-mage-asr: Chinese dialect ASR toolkit (CS-Mage Changsha dialect first)."""

__version__ = "0.1.0"
