"""The playground's routes: the page and its assets without a key, `/` pointing at it, nothing else served."""

import re
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from server.playground import STATIC_DIR


@pytest.fixture(scope="module")
def keyed():
    from server.app import create_app
    from server.settings import Settings
    from tests.support.fake_engine import FakeEngine
    from tests.support.servers import serve_app

    engine = FakeEngine()
    with serve_app(create_app(Settings(api_keys="sk-play"), engines={engine.model_id: engine})) as base:
        yield base


@pytest.mark.parametrize("path", ["/", "/playground"])
def test_root_and_bare_path_redirect_to_the_page(keyed, path):
    r = httpx.get(keyed + path)
    assert r.status_code == 307 and r.headers["location"] == "playground/"
    page = httpx.get(keyed + path, follow_redirects=True)
    assert page.status_code == 200 and str(page.url) == f"{keyed}/playground/"


def test_the_page_needs_no_key_and_loads_only_its_own_files(keyed):
    r = httpx.get(f"{keyed}/playground/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "<title>tts-server playground</title>" in r.text
    # No CDN: every src/href is relative (or an inline data: URL), the docs link one level up.
    refs = [ref for ref in re.findall(r'(?:src|href)="([^"]+)"', r.text) if not ref.startswith("data:")]
    assert refs and all(not re.match(r"^[a-z]+:|^//", ref) for ref in refs), refs
    assert "../docs" in refs


@pytest.mark.parametrize(
    "name,media",
    [("app.js", "text/javascript"), ("api.js", "text/javascript"), ("audio.js", "text/javascript"),
     ("snippets.js", "text/javascript"), ("words.js", "text/javascript"), ("style.css", "text/css")],
)  # fmt: skip
def test_assets_are_served_with_their_media_types(keyed, name, media):
    r = httpx.get(f"{keyed}/playground/{name}")
    assert r.status_code == 200 and r.headers["content-type"].startswith(media)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == (STATIC_DIR / name).read_bytes()


def test_every_module_import_resolves_to_an_asset():
    for path in STATIC_DIR.glob("*.js"):
        for target in re.findall(r'from "\./([^"]+)"', path.read_text()):
            assert (STATIC_DIR / target).is_file(), (path.name, target)
        assert "http://" not in path.read_text() and "https://" not in path.read_text()


@pytest.mark.parametrize("name", ["nope.js", "__init__.py", "..%2Fapp.py", ".hidden.js"])
def test_anything_else_is_404_in_togethers_error_shape(keyed, name):
    r = httpx.get(f"{keyed}/playground/{name}")
    assert r.status_code == 404 and "message" in r.json()["error"]


def test_the_api_still_needs_the_key(keyed):
    assert httpx.get(f"{keyed}/v1/voices").status_code == 401
    assert httpx.get(f"{keyed}/v1/voices", headers={"Authorization": "Bearer sk-play"}).status_code == 200


def test_assets_ship_as_package_data():
    static = files("server.playground") / "static"
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in static.iterdir()}
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"server.playground" = ["static/*"]' in pyproject
