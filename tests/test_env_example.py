"""`.env.example` lists every variable the settings read, so an operator sees them all."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_variable_is_in_env_example() -> None:
    settings = (ROOT / "mssante" / "settings.py").read_text()
    read = set(re.findall(r'conf\.\w+\(\s*"([A-Z][A-Z0-9_]*)"', settings))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    assert len(read) > 50  # the pattern still finds the settings
    assert sorted(read - listed) == []
