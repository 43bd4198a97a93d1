"""Reading TOML: `tomllib` where Python has it (3.11+), else a small reader of the TOML that
lock files and pyproject.toml use.

The small reader knows tables, arrays of tables, dotted and quoted keys, basic and literal
strings (multi-line too), integers, floats, booleans, arrays and inline tables; dates and
times are returned as their text. What it cannot read is a SpecError naming the file and
the line, as tomllib's errors are.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from builder.errors import SpecError

MAX_TOML_BYTES = 16 << 20  # a lock of a large monorepo is a few MB

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_NUMBER = re.compile(r"[+-]?(0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|[0-9_]+(\.[0-9_]+)?"
                     r"([eE][+-]?[0-9_]+)?|inf|nan)")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9:.]+([Zz]|[+-][0-9:]+)?)?"
                       r"|[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\",
            "e": "\x1b"}


def read_toml(path: Path, shown: str) -> dict[str, Any]:
    """The document at `path`; `shown` names it in errors."""
    try:
        if path.stat().st_size > MAX_TOML_BYTES:
            raise SpecError(f"larger than {MAX_TOML_BYTES} bytes", file=shown)
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=shown) from None
    except OSError as exc:
        raise SpecError(f"cannot be read: {exc.strerror}", file=shown) from None
    return loads(text, shown)


def loads(text: str, shown: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:
        return _Reader(text, shown).document()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"not valid TOML: {exc}", file=shown,
                        hint="fix the file, or regenerate it with the tool that wrote it") from None


class _Reader:
    def __init__(self, text: str, shown: str) -> None:
        self.text, self.shown, self.at = text.replace("\r\n", "\n"), shown, 0

    def fail(self, message: str) -> SpecError:
        line = self.text.count("\n", 0, self.at) + 1
        return SpecError(f"not valid TOML: {message}", file=self.shown, line=line,
                         hint="fix the file, or regenerate it with the tool that wrote it")

    def document(self) -> dict[str, Any]:
        root: dict[str, Any] = {}
        table = root
        while True:
            self.skip(newlines=True)
            if self.at >= len(self.text):
                return root
            if self.text.startswith("[[", self.at):
                self.at += 2
                keys = self.keys("]]")
                parent = self.walk(root, keys[:-1])
                array = parent.setdefault(keys[-1], [])
                if not isinstance(array, list):
                    raise self.fail(f"{'.'.join(keys)} is not an array of tables")
                table = {}
                array.append(table)
            elif self.text.startswith("[", self.at):
                self.at += 1
                table = self.walk(root, self.keys("]"))
            else:
                self.pair(table)
            self.end_of_line()

    def walk(self, table: dict, keys: list[str]) -> dict:
        for key in keys:
            value = table.setdefault(key, {})
            if isinstance(value, list) and value and isinstance(value[-1], dict):
                value = value[-1]
            if not isinstance(value, dict):
                raise self.fail(f"{key} is not a table")
            table = value
        return table

    def keys(self, closing: str) -> list[str]:
        keys = self.key()
        self.skip()
        if not self.text.startswith(closing, self.at):
            raise self.fail(f"expected {closing!r}")
        self.at += len(closing)
        return keys

    def key(self) -> list[str]:
        keys = []
        while True:
            self.skip()
            if self.peek() and self.peek() in "\"'":
                keys.append(self.string())
            else:
                match = _BARE_KEY.match(self.text, self.at)
                if not match:
                    raise self.fail("expected a key")
                keys.append(match[0])
                self.at = match.end()
            self.skip()
            if self.peek() != ".":
                return keys
            self.at += 1

    def pair(self, table: dict) -> None:
        keys = self.key()
        if self.peek() != "=":
            raise self.fail("expected '=' after a key")
        self.at += 1
        self.skip()
        target = self.walk(table, keys[:-1])
        if keys[-1] in target:
            raise self.fail(f"{'.'.join(keys)} is defined twice")
        target[keys[-1]] = self.value()

    def value(self) -> Any:
        char = self.peek()
        if char and char in "\"'":
            return self.string()
        if char == "[":
            return self.array()
        if char == "{":
            return self.inline_table()
        for word, value in (("true", True), ("false", False)):
            if self.text.startswith(word, self.at):
                self.at += len(word)
                return value
        match = _DATETIME.match(self.text, self.at)
        if match:
            self.at = match.end()
            return match[0]
        match = _NUMBER.match(self.text, self.at)
        if match:
            self.at = match.end()
            raw = match[0].replace("_", "")
            if raw.lstrip("+-")[:2] in ("0x", "0o", "0b"):
                return int(raw, 0)
            return float(raw) if any(c in raw for c in ".eEn") else int(raw)
        raise self.fail("expected a value")

    def array(self) -> list:
        start, items = self.at, []
        self.at += 1
        while True:
            self.skip(newlines=True)
            if self.at >= len(self.text):
                self.at = start
                raise self.fail("unterminated array")
            if self.peek() == "]":
                self.at += 1
                return items
            items.append(self.value())
            self.skip(newlines=True)
            if self.peek() == ",":
                self.at += 1
            elif self.peek() != "]":
                raise self.fail("expected ',' or ']' in an array")

    def inline_table(self) -> dict:
        self.at += 1
        table: dict[str, Any] = {}
        self.skip()
        if self.peek() == "}":
            self.at += 1
            return table
        while True:
            self.pair(table)
            self.skip()
            if self.peek() == "}":
                self.at += 1
                return table
            if self.peek() != ",":
                raise self.fail("expected ',' or '}' in an inline table")
            self.at += 1

    def string(self) -> str:
        quote = self.peek()
        multi = self.text.startswith(quote * 3, self.at)
        self.at += 3 if multi else 1
        if multi and self.peek() == "\n":
            self.at += 1
        closing = quote * 3 if multi else quote
        parts = []
        while True:
            if self.at >= len(self.text) or (not multi and self.peek() == "\n"):
                raise self.fail("unterminated string")
            if self.text.startswith(closing, self.at):
                self.at += len(closing)
                while multi and self.peek() == quote and len(parts) < 1 << 20:
                    parts.append(quote)  # up to two quotes may end a multi-line string
                    self.at += 1
                return "".join(parts)
            char = self.text[self.at]
            if char == "\\" and quote == '"':
                parts.append(self.escape(multi))
                continue
            parts.append(char)
            self.at += 1

    def escape(self, multi: bool) -> str:
        self.at += 1
        char = self.peek()
        if multi and char and char in " \t\n":
            while self.peek() and self.peek() in " \t\n":
                self.at += 1
            return ""
        if char in _ESCAPES:
            self.at += 1
            return _ESCAPES[char]
        width = {"u": 4, "U": 8, "x": 2}.get(char)
        digits = self.text[self.at + 1:self.at + 1 + width] if width else ""
        if not width or not re.fullmatch(r"[0-9A-Fa-f]+", digits) or len(digits) != width:
            raise self.fail(f"invalid escape \\{char}")
        self.at += 1 + width
        return chr(int(digits, 16))

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def skip(self, *, newlines: bool = False) -> None:
        while self.at < len(self.text):
            char = self.text[self.at]
            if char in " \t" or (newlines and char == "\n"):
                self.at += 1
            elif char == "#":
                end = self.text.find("\n", self.at)
                self.at = len(self.text) if end == -1 else end
            else:
                return

    def end_of_line(self) -> None:
        self.skip()
        if self.at < len(self.text) and self.peek() != "\n":
            raise self.fail("expected the end of the line")
