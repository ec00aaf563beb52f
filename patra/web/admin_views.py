"""Admin pages: inboxes, agents, labels."""

ROUTES: list = []
