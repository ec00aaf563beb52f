"""Safe HTML for the inbox and plain text derived from HTML-only mail."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

_TAGS = nh3.ALLOWED_TAGS | {"font", "center", "u", "s", "strike"}
_ATTRIBUTES = {
    **{tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "dir", "lang", "title", "align"},
    "img": {"src", "alt", "width", "height", "title"},
    "a": {"href", "title"},
    "font": {"color", "face", "size"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"width", "colspan", "rowspan", "valign", "bgcolor"},
    "th": {"width", "colspan", "rowspan", "valign", "bgcolor"},
}
_STYLE_PROPERTIES = {
    "color", "background-color", "font-weight", "font-style", "font-size",
    "font-family", "text-decoration", "text-align", "line-height", "margin",
    "margin-top", "margin-bottom", "margin-left", "margin-right", "padding",
    "padding-top", "padding-bottom", "padding-left", "padding-right", "border",
    "border-top", "border-bottom", "border-left", "border-right", "width",
    "height", "max-width", "vertical-align", "white-space", "direction",
}  # fmt: skip
# cid: points at an inline image of the same message; the UI rewrites it.
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


def sanitize_html(html: str) -> str:
    """Email HTML with scripts, handlers, forms and unknown markup removed."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        filter_style_properties=_STYLE_PROPERTIES,
        strip_comments=True,
    )


_BLOCKS = {
    "p", "div", "table", "tr", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5",
    "h6", "pre", "blockquote", "hr", "section", "article", "header", "footer",
    "dl", "dt", "dd", "address", "center",
}  # fmt: skip
_SKIPPED = {"script", "style", "head", "title", "template"}


class _TextCollector(HTMLParser):
    """Lines of visible text; blockquoted lines start with "> " per level."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quote_depth = 0
        self.skipping = 0
        self.preformatted = 0

    def _break(self, blank: bool = False) -> None:
        if self.lines[-1].strip(" >"):
            self.lines.append("")
        if blank and self.lines[-1:] == [""] and self.lines[-2:-1] != [""]:
            self.lines.append("")

    def _write(self, text: str) -> None:
        if not self.lines[-1]:
            text = text.lstrip()
            if not text:
                return
            self.lines[-1] = "> " * self.quote_depth
        self.lines[-1] += text

    def handle_starttag(self, tag, attrs):
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self.lines.append("")
        elif tag == "li":
            self._break()
            self._write("- ")
        elif tag in ("td", "th") and self.lines[-1].strip():
            self._write(" ")
        elif tag in _BLOCKS:
            self._break(blank=tag in ("p", "blockquote"))
        if tag == "blockquote":
            self.quote_depth += 1
        elif tag == "pre":
            self.preformatted += 1

    def handle_endtag(self, tag):
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "blockquote":
            self._break()
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag == "pre":
            self.preformatted = max(0, self.preformatted - 1)
        if tag in _BLOCKS:
            self._break(blank=tag == "p")

    def handle_data(self, data):
        if self.skipping:
            return
        if self.preformatted:
            first, *rest = data.split("\n")
            self._write(first)
            for line in rest:
                self.lines.append("")
                self._write(line)
            return
        self._write(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML mail, keeping paragraphs and quotes."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    lines = [line.rstrip() for line in collector.lines]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
