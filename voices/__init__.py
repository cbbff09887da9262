"""Voice catalogs (JSON) shipped with the server, one file per model family."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_catalog(name: str) -> dict[str, Any]:
    """Read ``voices/<name>.json`` from the installed package."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
