"""The one-line embed snippet an admin pastes into their site."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"


def script_url(public_url: str, inbox_id: int) -> str:
    return f"{public_url.rstrip('/')}/widget/{int(inbox_id)}.js"


def embed_snippet(public_url: str, inbox_id: int) -> str:
    return f'<script src="{script_url(public_url, inbox_id)}" async></script>'


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_null_translations(newstyle=True)
    return environment


def setup_hint_html(public_url: str, inbox_id: int) -> str:
    """The snippet, escaped inside ``<pre><code>``, with where to paste it."""
    template = _environment().get_template("webchat/setup_hint.html")
    return template.render(
        snippet=embed_snippet(public_url, inbox_id), public_url=public_url.rstrip("/")
    )
