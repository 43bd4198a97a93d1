"""Helpers of the example function."""


def shout(text: str) -> str:
    return text.upper() + "!"
