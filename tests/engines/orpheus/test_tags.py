"""OpenAI's instructions become Orpheus's emotion tags (the engine's, not the server's, knowledge)."""

from engines.orpheus.engine import OrpheusEngine
from engines.orpheus.settings import ORPHEUS_MODEL, OrpheusSettings
from engines.orpheus.tags import orpheus_tags


def test_orpheus_tags_from_instructions():
    assert orpheus_tags("Sigh first, then laughing <gasp>; sigh again") == "<sigh> <laugh> <gasp> "
    assert orpheus_tags("Speak calmly.") == "" and orpheus_tags(None) == ""


def test_the_engine_puts_the_tags_before_the_input():
    engine = OrpheusEngine(ORPHEUS_MODEL, OrpheusSettings())  # nothing loaded: the prefix needs no model
    assert engine.instruction_prefix("a yawn") == "<yawn> "
    assert not engine.native_speed  # the OpenAI route time-stretches Orpheus
