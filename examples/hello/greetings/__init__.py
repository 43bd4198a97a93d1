"""Greeting phrases shipped as a custom layer."""
from pathlib import Path

import yaml

PHRASES = yaml.safe_load((Path(__file__).parent / "phrases.yaml").read_text())


def greet(name: str, style: str = "friendly") -> str:
    return PHRASES.get(style, PHRASES["friendly"]).format(name=name)
