"""The agent inbox (HTML + htmx)."""

ROUTES: list = []
