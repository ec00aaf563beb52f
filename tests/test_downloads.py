"""The Content-Disposition header every download (inbox, API, chat) is sent with."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from patra.web.downloads import content_disposition


@pytest.mark.parametrize(
    "filename", ["ملف.txt", "Rechnung Müller.pdf", 'a "quoted"\\name\r\n.txt']
)
def test_any_file_name_gives_a_latin1_header_that_keeps_the_exact_name(filename):
    header = content_disposition(filename)

    header.encode("latin-1")
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="')
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == filename


def test_safe_images_can_be_shown_inline():
    assert content_disposition("photo.png", inline=True).startswith("inline;")
