"""Jinja environment: the active theme first, then the default theme, then plugins.

Every user-facing string is wrapped in ``_()`` (Jinja's i18n extension with
Babel catalogs from ``patra/locale``); English is the source language.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.support import NullTranslations, Translations
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

import patra

LOCALE_DIR = Path(patra.__file__).parent / "locale"


def themes_root() -> Path:
    """``themes/`` of a source checkout, or the copy packed into the wheel."""
    package_dir = Path(patra.__file__).parent
    for candidate in (package_dir.parent / "themes", package_dir / "_themes"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("The themes folder is missing from this installation.")


def theme_dirs(theme: str, kind: str) -> list[Path]:
    """``templates`` or ``static`` folders of the theme, falling back to default."""
    root = themes_root()
    names = [theme] if theme == "default" else [theme, "default"]
    return [root / name / kind for name in names if (root / name / kind).is_dir()]


def build_environment(
    theme: str, plugin_dirs: list[Path], locale: str = "en"
) -> Environment:
    loader = ChoiceLoader(
        [FileSystemLoader([*theme_dirs(theme, "templates"), *plugin_dirs])]
    )
    environment = Environment(
        loader=loader,
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations: NullTranslations = Translations.load(LOCALE_DIR, [locale])
    environment.install_gettext_translations(translations, newstyle=True)
    environment.filters["timeago"] = timeago
    environment.filters["daytime"] = daytime
    environment.filters["isotime"] = lambda value: value.isoformat() if value else ""
    environment.filters["filesize"] = filesize
    environment.filters["nl2br"] = nl2br
    environment.filters["highlight"] = highlight
    environment.globals["query_string"] = query_string
    environment.globals["new_token"] = lambda: secrets.token_hex(16)
    return environment


def timeago(value: datetime | None) -> str:
    if value is None:
        return ""
    seconds = (datetime.now(UTC) - value).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return day(value)


def day(value: datetime) -> str:
    """``05 Mar``, with the year when it is not this year: ``05 Mar 2031``."""
    if value.astimezone(UTC).year == datetime.now(UTC).year:
        return value.strftime("%d %b")
    return value.strftime("%d %b %Y")


def daytime(value: datetime | None) -> str:
    """``05 Mar 09:00`` in UTC, with the year when it is not this year."""
    if value is None:
        return ""
    value = value.astimezone(UTC)
    return f"{day(value)} {value.strftime('%H:%M')}"


def filesize(size: int) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def nl2br(value: str) -> Markup:
    from markupsafe import escape

    return Markup("<br>").join(escape(value).split("\n"))


def highlight(snippet: str | None) -> Markup:
    """A ts_headline snippet: the text escaped, then only <mark> allowed again."""
    escaped = str(escape(snippet or ""))
    return Markup(
        escaped.replace("&lt;mark&gt;", "<mark>").replace("&lt;/mark&gt;", "</mark>")
    )


def query_string(**params: Any) -> str:
    """``?a=1&b=2`` without empty values, for links that keep the filters."""
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return "?" + urlencode(kept) if kept else ""
