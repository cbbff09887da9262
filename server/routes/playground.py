"""GET /playground/ (the page and its assets) and GET / (a redirect to it). No key needed: the page
itself sends the key the user types with each API call."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from server.errors import HTTPError
from server.playground import MEDIA_TYPES, STATIC_DIR, asset

router = APIRouter(include_in_schema=False)

# The page loads only its own files and talks only to this server (its API and websocket).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


# Relative redirects ("playground/"), so the page also works behind a proxy that serves it under a prefix;
# the page finds the API relative to its own URL the same way.
@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("playground/", status_code=307)


@router.get("/playground")
async def playground_no_slash() -> RedirectResponse:
    return RedirectResponse("playground/", status_code=307)


@router.get("/playground/")
async def playground() -> FileResponse:
    headers = {**HEADERS, "Content-Security-Policy": CSP}
    return FileResponse(STATIC_DIR / "index.html", media_type=MEDIA_TYPES[".html"], headers=headers)


@router.get("/playground/{name}")
async def playground_asset(name: str) -> FileResponse:
    path = asset(name)
    if path is None:
        raise HTTPError(404, f"No playground file '{name}'.", code="not_found")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)
