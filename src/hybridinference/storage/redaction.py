"""Redaction of stored prompt/response content (only stored when ``store_content`` is on).

Rules are a registry of named patterns (``secrets``, ``emails``) plus any custom
regular expressions from config; each match is replaced by ``[REDACTED:<rule>]``. JSON
content is redacted string by string, so it stays valid JSON.
Redaction runs in the log writer, off the response path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from hybridinference.schemas.records import RequestRecord

RULES: Mapping[str, str] = {
    # API keys and tokens with well-known shapes, bearer tokens, and key=value secrets.
    "secrets": r"|".join(
        (
            r"\b(?:sk|pk|rk|hi)-[A-Za-z0-9_\-]{16,}",
            r"\bsk-ant-[A-Za-z0-9_\-]{16,}",
            r"\bAKIA[0-9A-Z]{16}\b",
            r"\bgh[pousr]_[A-Za-z0-9]{30,}",
            r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",
            r"\bAIza[0-9A-Za-z_\-]{35}",
            r"(?i:\bbearer\s+[A-Za-z0-9._~+/\-]{16,}=*)",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
            r"(?i:\b(?:password|passwd|secret|api[_-]?key)\s*[:=]\s*[^\s\"',}]{4,})",
        )
    ),
    "emails": r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b",
}


@dataclass(frozen=True, slots=True)
class Redactor:
    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    @classmethod
    def build(cls, rules: Iterable[str], custom: Iterable[str] = ()) -> Redactor:
        unknown = [r for r in rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown redaction rule(s): {', '.join(unknown)}")
        compiled = [(name, re.compile(RULES[name])) for name in rules]
        compiled += [(f"custom{i}", re.compile(p)) for i, p in enumerate(custom, 1)]
        return cls(tuple(compiled))

    def text(self, value: str) -> str:
        for name, pattern in self.patterns:
            value = pattern.sub(f"[REDACTED:{name}]", value)
        return value

    def value(self, value: Any) -> Any:
        """Redact every string in a JSON value (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        return value

    def record(self, record: RequestRecord) -> RequestRecord:
        """The record with its content redacted; content stays valid JSON when it was."""
        if record.content is None or not self.patterns:
            return record
        try:
            parsed = orjson.loads(record.content)
        except orjson.JSONDecodeError:
            return replace(record, content=self.text(record.content))
        return replace(record, content=orjson.dumps(self.value(parsed)).decode())
