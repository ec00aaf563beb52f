"""Patra's benchmark suite; run it with ``python -m bench`` (see bench/run.py)."""
