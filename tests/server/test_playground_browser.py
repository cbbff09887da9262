"""The playground in a real browser: Debian's headless Chromium driven by Playwright, against the server on
random-weight Kokoro with an API key. The page runs under its own Content-Security-Policy, so the test polls
with ``page.evaluate`` (Playwright's ``wait_for_function`` needs eval, which that policy forbids).

Each run writes a screenshot to pytest's tmp dir; ``TTS_UPDATE_SCREENSHOT=1`` also copies it to
``docs/playground.png`` (the README's picture).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf

from server.app import create_app
from server.settings import Settings
from tests.support.servers import serve_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
KEY = "sk-playground-test"
TEXT = "Hello there, this is the playground. Words light up as they are spoken."
REPO = Path(__file__).resolve().parents[2]


def chromium_or_skip():
    """Playwright's sync API and Debian's chromium; CI installs both, so there a missing one fails."""
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package (pip install -e '.[dev]')"
    if missing is None and not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} (apt-get install chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the playground browser test needs {missing}")
        pytest.skip(f"needs {missing}")
    return sync_playwright


def wait_for(page, expression: str, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(f"(() => {{ try {{ return {expression}; }} catch {{ return null; }} }})()")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}; stats: {page.evaluate(STATS)}")
        time.sleep(0.05)


STATS = "window.playground.stats"


@pytest.fixture(scope="module")
def server(kokoro_dir):
    settings = Settings(kokoro_source=str(kokoro_dir), device="cpu", api_keys=KEY, torch_threads=1)
    with serve_app(create_app(settings), timeout_s=300) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    sync_playwright = chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def open_page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server}/")  # redirected to /playground/
    wait_for(page, f"{STATS}.loads >= 1 && !{STATS}.loading")
    page.errors = errors
    return page


def connect(page, key: str) -> None:
    loads = page.evaluate(f"{STATS}.loads")
    page.fill("#api-key", key)
    page.click("#reload")
    wait_for(page, f"{STATS}.loads > {loads} && !{STATS}.loading")


@pytest.fixture(scope="module")
def page(browser, server):
    page = open_page(browser, server)
    connect(page, KEY)
    yield page
    assert not page.errors, page.errors
    page.close()


@pytest.fixture(scope="module")
def spoken(page, tmp_path_factory):
    """Speak once with a two-voice mix; the stats after the stream ends, and a screenshot.

    Sets every control it relies on, so it does not depend on what earlier tests left on the page.
    """
    page.select_option("#voice", "af_heart")
    page.fill("#seed", "")
    page.fill("#text", TEXT)
    page.check("#mix-on")
    page.fill("#mix-weight", "0.7")
    page.select_option("#voice-b", "af_bella")
    assert page.evaluate("window.playground.settings().voice") == "af_heart(0.7)+af_bella(0.3)"
    page.click("#speak")
    stats = wait_for(page, f"({STATS}.done || {STATS}.error) && {STATS}", timeout_s=120)
    with contextlib.suppress(AssertionError):  # for the picture, a moment with a word lit up
        wait_for(page, "document.querySelector('#words span.current')", timeout_s=5)
    shot = tmp_path_factory.mktemp("playground") / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("TTS_UPDATE_SCREENSHOT"):
        shutil.copy(shot, REPO / "docs" / "playground.png")
    return stats


def test_without_a_key_and_with_a_wrong_one_the_page_shows_the_servers_401(browser, server):
    page = open_page(browser, server)
    error = page.locator("#error")
    assert error.is_visible() and "401: Missing API key" in error.text_content()
    connect(page, "sk-wrong")
    assert error.text_content() == "401: Invalid API key."
    assert page.evaluate(f"{STATS}.voices") == 0
    page.close()


def test_models_and_voices_load_from_the_api(page):
    assert page.locator("#error").is_hidden()
    models = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert models == ["hexgrad/Kokoro-82M"]
    voices = page.eval_on_selector_all("#voice option", "os => os.map(o => o.value)")
    assert {"af_heart", "af_bella", "bm_george", "ef_dora", "jf_alpha"} <= set(voices)
    languages = page.eval_on_selector_all("#language option", "os => os.map(o => o.value)")
    assert {"en", "es", "ja"} <= set(languages)
    assert page.locator("#mix-box").is_visible() and page.locator("#orpheus-box").is_hidden()
    page.select_option("#voice", "ef_dora")  # a voice brings its language
    assert page.input_value("#language") == "es"
    page.select_option("#voice", "af_heart")
    assert page.input_value("#language") == "en"
    assert page.get_attribute("#docs-link", "href") == "../docs"


def test_a_bad_request_shows_the_servers_400_message(page):
    page.fill("#seed", "5000000000")
    page.click("#speak")
    wait_for(page, f"{STATS}.error !== null && !{STATS}.loading && !window.playground.state.busy")
    assert page.text_content("#error").startswith("400: Invalid value for 'seed'")
    page.fill("#seed", "")


def test_speak_streams_audio_with_first_audio_time_rtf_and_word_highlights(page, spoken):
    assert spoken["error"] is None and spoken["done"]
    assert spoken["bytes"] > 10_000 and spoken["samples"] * 2 == spoken["bytes"]
    assert 0 < spoken["firstAudioMs"] <= spoken["elapsedMs"] and spoken["rtf"] > 0
    assert spoken["words"] >= 10  # Kokoro English has word timestamps, sent as their own SSE events
    assert page.text_content("#stat-ttfa").endswith(" ms")
    assert "real time" in page.text_content("#stat-rtf")
    if spoken["playback"]:  # Web Audio ran: the highlight follows what is heard
        spoken_all = f"document.querySelectorAll('#words span.spoken').length === {STATS}.words"
        wait_for(page, spoken_all, timeout_s=spoken["audioSeconds"] + 20)  # once the audio has played out
        assert page.evaluate(f"{STATS}.wordsHighlighted") == spoken["words"]


def test_download_wav_is_the_streamed_audio_with_a_riff_header(page, spoken):
    with page.expect_download() as download:
        page.click("#download-wav")
    data = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename == "speech.wav"
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (24000, 1, "PCM_16", spoken["samples"])
    audio, _ = sf.read(io.BytesIO(data), dtype="int16")
    assert len(data) == 44 + 2 * spoken["samples"] and audio.any()


def test_download_mp3_is_a_new_non_streamed_request(page, spoken):
    with page.expect_download(timeout=120_000) as download:
        page.click("#download-mp3")
    data = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename == "speech.mp3"
    info = sf.info(io.BytesIO(data))
    assert info.format == "MP3" and info.samplerate == 24000 and info.duration > 1


def snippet(page, lang: str, output: str) -> str:
    page.click(f"[data-lang={lang}]")
    page.select_option("#code-output", output)
    return page.text_content("#code")


def test_copy_as_code_runs_and_never_carries_the_key(page, spoken, tmp_path, monkeypatch):
    page.uncheck("#mix-on")
    page.fill("#text", "Copied as code.")
    together = snippet(page, "together", "stream")
    openai = snippet(page, "openai", "wav")
    curl = snippet(page, "curl", "wav")
    for code in (together, openai, curl):
        assert KEY not in code and '"af_heart"' in code and "Copied as code." in code
    assert "from together import Together" in together and "client.audio.speech.create(" in together
    assert "from openai import OpenAI" in openai and curl.startswith("curl ")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TTS_API_KEY", KEY)
    scope: dict = {}
    exec(together, scope)  # the together SDK, streaming raw PCM
    assert len(scope["pcm"]) > 1000
    exec(openai, {})  # the openai SDK, writing speech.wav
    assert sf.info("speech.wav").samplerate == 24000
    os.remove("speech.wav")
    subprocess.run(["bash", "-c", curl], check=True, timeout=120)
    assert sf.info("speech.wav").samplerate == 24000


def test_orpheus_controls_appear_only_for_orpheus(page):
    """No Orpheus here: feed the page a listing with one to check its sampling fields and tag chips."""
    page.evaluate(
        """() => {
        const pg = window.playground;
        pg.state.voices.set("canopylabs/orpheus-3b-0.1-ft", [{id: "tara", name: "tara", language: "en-US"}]);
        const select = document.getElementById("model");
        select.append(new Option("orpheus", "canopylabs/orpheus-3b-0.1-ft"));
        select.value = "canopylabs/orpheus-3b-0.1-ft";
        select.dispatchEvent(new Event("change", {bubbles: true}));
    }"""
    )
    assert page.locator("#orpheus-box").is_visible() and page.locator("#tags").is_visible()
    assert page.locator("#mix-box").is_hidden() and page.locator("#speed-box").is_hidden()
    page.fill("#text", "Well")
    page.click("#text")
    page.keyboard.press("End")
    page.click("text=<laugh>")
    page.fill("#temperature", "0.9")
    settings = page.evaluate("window.playground.settings()")
    assert settings["input"] == "Well <laugh> " and settings["sampling"] == {"temperature": 0.9}
    assert "temperature" in snippet(page, "together", "wav") and "<laugh>" in snippet(page, "curl", "wav")
    page.select_option("#model", "hexgrad/Kokoro-82M")
    assert page.locator("#orpheus-box").is_hidden() and page.locator("#tags").is_hidden()
