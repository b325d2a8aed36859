"""Analyses of models beyond restoration scores; `cave` studies how CaVE checkpoints separate compression levels."""
