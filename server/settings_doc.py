"""What ``tts-server config`` prints: the effective settings (JSON, secrets masked) and the README's
settings table (``--markdown``), both from the code, so the documentation cannot drift from it."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from engines import registry
from server import settings_layout
from server.settings import Settings

#: The README's table sits between two of these lines (tests/server/test_readme_settings.py compares).
TABLE_MARKER = "<!-- settings-table -->"


def flat_fields() -> dict[str, FieldInfo]:
    """The server's own fields and the inherited defaults: everything but the model sections."""
    sections = {spec.section for spec in registry.ENGINES}
    return {name: info for name, info in Settings.model_fields.items() if name not in sections}


def secret_flat_fields() -> frozenset[str]:
    return registry.secret_fields(Settings)


def effective(settings: Settings) -> dict[str, Any]:
    """Every value the server runs with, each model's section under its name; secrets masked."""
    values = registry.public_settings(settings)
    for spec in registry.ENGINES:
        values[spec.section] = registry.public_settings(getattr(settings, spec.section))
    return values


def effective_json(settings: Settings) -> str:
    return json.dumps(effective(settings), indent=2, sort_keys=False)


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.default is PydanticUndefined else info.default


def _shown(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return ""
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict):
        return "`" + ",".join(f"{k}={v}" for k, v in value.items()) + "`"
    if isinstance(value, list | tuple):
        return "`" + ",".join(str(v) for v in value) + "`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _row(env: str, flag: str, default: str, description: str) -> str:
    return f"| {env} | {flag} | {default} | {_cell(description)} |"


def markdown_table() -> str:
    """The settings table: the server's flat fields, then each model's section."""
    lines = [
        "| environment | flag | default | description |",
        "|---|---|---|---|",
    ]
    secrets = secret_flat_fields()
    inherited = settings_layout.INHERITED_FIELDS
    for name, info in flat_fields().items():
        flag = "(env only)" if name in secrets else f"`--{name.replace('_', '-')}`"
        description = info.description or ""
        if name in inherited:
            description += " Default for every model's section, which may set its own."
        lines.append(_row(f"`TTS_{name.upper()}`", flag, _shown(_default(info)), description))
    for section, cls in settings_layout.sections():
        for field in settings_layout.section_fields(section, cls):
            env = ", ".join(f"`{name}`" for name in field.env_names)
            flag = "(env only)" if field.secret else f"`{field.flag}`"
            default = _shown(_default(field.info))
            if field.inherits is not None:
                own = f" if set, else {default}" if default and field.name in _own_defaults(cls) else ""
                default = f"`TTS_{field.inherits.upper()}`{own}"
            lines.append(_row(env, flag, default, field.info.description or ""))
    return "\n".join(lines) + "\n"


def _own_defaults(cls: type[BaseModel]) -> frozenset[str]:
    """Inherited fields whose default in this section differs from the flat one (Orpheus's segment_chars)."""
    flat = flat_fields()
    return frozenset(
        name for name, info in cls.model_fields.items() if name in flat and _default(info) != _default(flat[name])
    )


def readme_table(readme: str) -> str:
    """The table between the two markers in the README's text."""
    start = readme.index(TABLE_MARKER) + len(TABLE_MARKER)
    end = readme.index(TABLE_MARKER, start)
    return readme[start:end].strip("\n") + "\n"
