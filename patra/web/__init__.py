"""The web layer: HTML inbox, JSON API, live events. Controllers stay thin."""
