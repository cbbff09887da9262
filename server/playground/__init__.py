"""The playground: a page served by the server itself to hear every model and voice from a browser.

Plain HTML, CSS and ES modules in ``static/`` (shipped as package data, no CDN, no build step). The
page talks to the public API like any client: ``/v1/voices``, ``/v1/models`` and streamed
``/v1/audio/speech``, with the API key the user types (kept in the page's memory only).
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Media types of the files the page is made of; anything else in ``static/`` is never served.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def asset(name: str) -> Path | None:
    """The file ``name`` (a bare file name) in ``static/``, or None if there is no such asset."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = STATIC_DIR / name
    if path.suffix not in MEDIA_TYPES or not path.is_file():
        return None
    return path
