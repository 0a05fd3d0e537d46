"""Data building: Korean chat SFT dialogues composed from the hand-written content bank."""
