"""A run: the training loop, its checkpoints, planning (estimates), queries through budget and cache, evaluation and the exported artifact."""
