"""Bounded parsing of request bodies: JSON and YAML into plain JSON-shaped data, or a clear 4xx.

- YAML is read with a SafeLoader that refuses aliases (``*name``): a few hundred bytes of nested aliases
  otherwise expand to gigabytes ("billion laughs"). Anchors alone are harmless and allowed.
- Nesting deeper than ``max_depth`` is refused while the YAML is composed (before any recursion limit
  is near) and right after JSON is decoded.
- The result may hold only mappings with string keys, lists, strings, booleans, null, finite floats and
  integers within 64 bits; strings must be valid UTF-8 without NUL (PostgreSQL refuses NUL in text). YAML
  dates, sets and binary values are refused with the field that holds them.

The body size is bounded before parsing, by ``BodyLimitMiddleware`` (api/limits.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

DEFAULT_MAX_DEPTH = 64
_INT_LIMIT = 2**63


class ParseError(ValueError):
    """The body cannot be accepted as data; answered with 400 (415 for an unsupported media type)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses alias events and nesting deeper than ``max_depth`` (the pure-Python loader:
    the C one composes nodes in C, out of reach of this check)."""

    max_depth = DEFAULT_MAX_DEPTH

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"YAML aliases (*{event.anchor}) are not accepted", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise yaml.composer.ComposerError(
                    None, None, f"nesting deeper than {self.max_depth} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    loader_cls = type("Loader", (BoundedLoader,), {"max_depth": max_depth})
    loader = None
    try:
        loader = loader_cls(text)  # the reader refuses control characters (NUL) already here
        data = loader.get_single_data()
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:  # ValueError: a 5000-digit integer
        raise ParseError(f"body is not valid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return check_tree(data, max_depth)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    if _bracket_depth(text) > max_depth:
        raise ParseError(f"body nests deeper than {max_depth} levels")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ParseError(f"body is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"body is not valid JSON: {exc}") from None
    return check_tree(data, max_depth)


def _bracket_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting outside strings (a cheap pre-check before the recursive decoder)."""
    if text.count("[") + text.count("{") <= DEFAULT_MAX_DEPTH:
        return 0
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _where(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(body)"


def _check_str(value: str, path: list[str | int]) -> None:
    if "\x00" in value:
        raise ParseError(f"{_where(path)}: NUL characters are not accepted", 422)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError(f"{_where(path)}: not valid Unicode (lone surrogate)", 422) from None


def check_tree(data: Any, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Raise ParseError unless ``data`` is plain JSON-shaped data within the limits (iterative walk)."""
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > max_depth:
            raise ParseError(f"body nests deeper than {max_depth} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ParseError(f"{_where(path)}: keys must be strings, got {type(key).__name__} {key!r:.40}", 422)
                _check_str(key, path + [key])
                stack.append((item, path + [key]))
        elif isinstance(value, list):
            stack.extend((item, path + [i]) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_str(value, path)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -_INT_LIMIT <= value < _INT_LIMIT:
                raise ParseError(f"{_where(path)}: integer out of the 64-bit range", 422)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ParseError(f"{_where(path)}: {value} is not a finite number", 422)
        else:
            raise ParseError(
                f"{_where(path)}: a YAML {type(value).__name__} value is not accepted (quote it to pass a string)", 422
            )
    return data


YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json",)


def parse_body(raw: bytes, content_type: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode a request body as JSON (the default) or YAML, by its media type."""
    media = content_type.split(";", 1)[0].strip().lower() or "application/json"
    if media not in YAML_TYPES and media not in JSON_TYPES and not media.endswith("+json"):
        raise ParseError(f"unsupported content type {media!r}; use application/json or application/yaml", 415)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("body is not UTF-8") from None
    return load_yaml(text, max_depth) if media in YAML_TYPES else load_json(text, max_depth)
