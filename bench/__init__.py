"""Benchmarks: butlerd against the reference Go logdog_butler (``python -m bench``)."""
