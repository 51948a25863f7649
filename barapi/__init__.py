"""barapi: reprogram a black-box image classifier behind a prediction API (BAR, ICML 2020)."""

__version__ = "0.1.0"
