"""Rainforest Automation bridges to the utility meter: EMU-2 (serial) and EAGLE (local API)."""
