"""Voice resolution: UUIDs as is, Together names via the catalog, then Cartesia's GET /voices."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from engines.base import OutputSpec, SynthesisRequest
from engines.cartesia.engine import CartesiaEngine
from engines.cartesia.voices import VoiceCatalogError, load_cartesia_catalog, parse_catalog
from server.errors import InvalidVoice, UpstreamError, http_status
from tests.engines.cartesia.fake_cartesia import FakeCartesia, cartesia_voice

# Together's documented names for cartesia/sonic (API reference enum) and their Cartesia UUIDs.
TOGETHER_DOCUMENTED = {
    "laidback woman": "21b81c14-f85b-436d-aff5-43f2e788ecf8",
    "polite man": "ee7ea9f8-c0c1-498c-9279-764d6b56d189",
    "storyteller lady": "996a8b96-4804-46f0-8e05-3fd4ef1a87cd",
    "friendly sidekick": "e00d0e4c-a5c8-443f-a8a3-473eb9a62355",
}
CUSTOM_ID = "11111111-2222-4333-8444-555555555555"


def make_request(voice: str) -> SynthesisRequest:
    return SynthesisRequest(
        model="cartesia/sonic", text="Hi.", voice=voice, output=OutputSpec(format="raw", sample_rate=24000)
    )


async def sent_voice_id(engine: CartesiaEngine, fake: FakeCartesia, voice: str) -> str:
    request = make_request(voice)
    await engine.validate(request)
    async for _ in engine.synthesize(request):
        pass
    return fake.tts_requests()[-1].body["voice"]["id"]


def test_catalog_has_togethers_documented_voices() -> None:
    catalog = load_cartesia_catalog(None)
    for name, voice_id in TOGETHER_DOCUMENTED.items():
        assert catalog[name].id == voice_id
    assert len(catalog) >= 100
    assert all(v.language for name, v in catalog.items() if name != "maria")


@pytest.mark.parametrize(("name", "voice_id"), TOGETHER_DOCUMENTED.items())
async def test_documented_names_resolve_to_uuids(
    engine: CartesiaEngine, fake: FakeCartesia, name: str, voice_id: str
) -> None:
    assert await sent_voice_id(engine, fake, name) == voice_id
    assert fake.voice_requests() == []  # the catalog answered; Cartesia's list was not needed


async def test_names_match_case_and_spacing_insensitively(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    assert await sent_voice_id(engine, fake, "  Friendly   SIDEKICK ") == TOGETHER_DOCUMENTED["friendly sidekick"]


async def test_uuid_is_used_as_is_without_lookup(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    assert await sent_voice_id(engine, fake, CUSTOM_ID) == CUSTOM_ID
    assert fake.voice_requests() == []


async def test_unknown_name_falls_back_to_cartesias_voice_list(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.voices = [cartesia_voice(f"Voice {i}") for i in range(5)] + [
        cartesia_voice("Oliver - Customer Chap", CUSTOM_ID)
    ]
    assert await sent_voice_id(engine, fake, "oliver - customer chap") == CUSTOM_ID
    listings = fake.voice_requests()
    assert len(listings) == 3  # pages of 2: the proxy followed has_more with starting_after
    assert listings[0].headers["authorization"].startswith("Bearer ")
    assert listings[1].query["starting_after"] == [fake.behaviour.voices[1]["id"]]


async def test_upstream_list_is_cached_for_its_ttl(make_engine, fake: FakeCartesia) -> None:
    engine = await make_engine(cartesia_voices_ttl_s=0.5)
    fake.behaviour.voices = [cartesia_voice("Oliver", CUSTOM_ID)]
    for _ in range(3):
        assert await sent_voice_id(engine, fake, "Oliver") == CUSTOM_ID
    with pytest.raises(InvalidVoice):  # unknown names are answered from the cache too
        await engine.validate(make_request("nobody"))
    assert len(fake.voice_requests()) == 1
    await asyncio.sleep(0.6)
    await engine.validate(make_request("Oliver"))
    assert len(fake.voice_requests()) == 2


async def test_concurrent_lookups_share_one_listing(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.voices = [cartesia_voice("Oliver", CUSTOM_ID)]
    fake.behaviour.hang_s = 0.2  # keep the listing in flight while the others arrive
    await asyncio.gather(*(engine.validate(make_request("Oliver")) for _ in range(5)))
    assert len(fake.voice_requests()) == 1


async def test_unknown_voice_is_a_400_before_any_synthesis(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    with pytest.raises(InvalidVoice) as err:
        await engine.validate(make_request("no such voice"))
    assert http_status(err.value) == 400 and err.value.param == "voice"
    assert "no such voice" in err.value.message
    assert fake.tts_requests() == []


async def test_failed_voice_listing_is_an_upstream_error(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    fake.behaviour.voices_status = 503
    with pytest.raises(UpstreamError):
        await engine.validate(make_request("someone new"))
    assert fake.tts_requests() == []


async def test_stale_list_is_kept_when_a_refresh_fails(make_engine, fake: FakeCartesia) -> None:
    engine = await make_engine(cartesia_voices_ttl_s=0.2)
    fake.behaviour.voices = [cartesia_voice("Oliver", CUSTOM_ID)]
    await engine.validate(make_request("Oliver"))
    await asyncio.sleep(0.3)
    fake.behaviour.voices_status = 500
    await engine.validate(make_request("Oliver"))  # still resolves from the previous listing


async def test_voices_lists_catalog_then_fetched_upstream_voices(engine: CartesiaEngine, fake: FakeCartesia) -> None:
    names = {v.name for v in engine.voices()}
    assert set(TOGETHER_DOCUMENTED) <= names
    assert "Oliver" not in names
    fake.behaviour.voices = [cartesia_voice("Oliver", CUSTOM_ID, gender="masculine")]
    await engine.validate(make_request("Oliver"))
    oliver = next(v for v in engine.voices() if v.name == "Oliver")
    assert (oliver.id, oliver.gender, oliver.language) == (CUSTOM_ID, "male", "en")


async def test_operator_file_adds_and_overrides_names(make_engine, fake: FakeCartesia, tmp_path: Path) -> None:
    extra = tmp_path / "voices.json"
    extra.write_text(
        json.dumps(
            {
                "voices": [
                    {"name": "House Voice", "id": CUSTOM_ID, "language": "en", "gender": "female"},
                    {"name": "Polite Man", "id": "22222222-3333-4444-8555-666666666666"},
                ]
            }
        )
    )
    engine = await make_engine(cartesia_voices_file=extra)
    assert await sent_voice_id(engine, fake, "house voice") == CUSTOM_ID
    assert await sent_voice_id(engine, fake, "polite man") == "22222222-3333-4444-8555-666666666666"
    assert "House Voice" in {v.name for v in engine.voices()}


async def test_broken_operator_file_fails_at_load(make_settings, tmp_path: Path) -> None:
    extra = tmp_path / "voices.json"
    extra.write_text(json.dumps({"voices": [{"name": "x", "id": "not-a-uuid"}]}))
    engine = CartesiaEngine("cartesia/sonic", make_settings(cartesia_voices_file=extra).cartesia)
    with pytest.raises(VoiceCatalogError, match="UUID"):
        await engine.load()
    missing = CartesiaEngine("cartesia/sonic", make_settings(cartesia_voices_file=tmp_path / "nope.json").cartesia)
    with pytest.raises(VoiceCatalogError, match="TTS_CARTESIA_VOICES_FILE"):
        await missing.load()


@pytest.mark.parametrize(
    "text", ["[]", "{}", "not json", '{"voices": [{"id": "11111111-2222-4333-8444-555555555555"}]}']
)
def test_malformed_catalogs_are_rejected(text: str) -> None:
    with pytest.raises(VoiceCatalogError):
        parse_catalog(text, "test.json")
