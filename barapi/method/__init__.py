"""The method: the program and its bases, optimisers, label mappings, the portfolio, losses and readouts — pure numpy, no I/O."""
