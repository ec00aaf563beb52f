"""Patra: a self-hosted unified inbox and helpdesk."""

__version__ = "0.1.0"
