"""Plugins the core ships and always loads, registered like any other."""
