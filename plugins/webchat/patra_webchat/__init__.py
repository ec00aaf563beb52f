"""Website chat for Patra: an embeddable widget and the endpoints it talks to."""
