"""Safety checks on what flows through a run.

- Prompt injection: retrieved text that tries to instruct the model is flagged, recorded on
  the run, and withheld from the model, so it cannot steer tool calls.
- Redaction: secrets and credentials are replaced before anything is stored or logged.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "override",
            r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|"
            r"earlier|all|any|your|the)\b.{0,30}\b(instructions?|prompts?|rules|"
            r"directions|guidelines)\b",
        ),
        (
            "role_play",
            r"\byou are now\b|\bact as (an?|the) (?:unrestricted|jailbroken|different)"
            r"|\bpretend (to be|you are)\b",
        ),
        (
            "system_prompt",
            r"\b(reveal|print|show|repeat|leak)\b.{0,30}\b(system prompt|hidden "
            r"prompt|your instructions)\b",
        ),
        ("fake_role", r"(^|\n)\s*(system|assistant|developer)\s*:\s"),
        ("chat_markup", r"<\|im_start\|>|<\|system\|>|\[INST\]|<<SYS>>"),
        (
            "tool_steering",
            r"\b(call|use|invoke|run) the\b.{0,20}\b(tool|function)\b|"
            r"\b(create|delete|archive|move)\b.{0,30}\b(item|items|ticket)s?\b.{0,40}"
            r"\b(immediately|now|without asking)\b",
        ),
        (
            "exfiltration",
            r"\b(send|post|upload|email)\b.{0,40}\b(api key|password|token|"
            r"secret|credentials?)\b",
        ),
    )
)
_HIDDEN = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e]")


def injection_flags(text: str) -> list[str]:
    """Names of the injection patterns found in ``text`` (empty when it looks benign).
    Hidden characters (zero-width, bidi overrides) count as an attempt on their own."""
    flags = []
    if _HIDDEN.search(text):
        flags.append("hidden_text")
    normal = unicodedata.normalize("NFKC", _HIDDEN.sub("", text))
    flags.extend(name for name, pattern in _INJECTION_PATTERNS if pattern.search(normal))
    return flags


REDACTED = "[REDACTED]"
_SECRETS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"\bwbi?_[A-Za-z0-9_\-]{20,}",  # Workbench API and invitation tokens
        r"\bsk-[A-Za-z0-9_\-]{16,}",  # OpenAI-style keys
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",  # AWS access key ids
        r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
        r"(?i)\bbearer\s+[A-Za-z0-9._\-+/=]{16,}",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----",
        r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",  # JWTs
    )
)
_ASSIGNED = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|access[_-]?token|client[_-]?secret)"
    r"(\s*[:=]\s*)([\"']?)[^\s\"',;]{4,}\3"
)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:@/\s]*):[^@/\s]+@")


def redact(text: str) -> str:
    """``text`` with credentials replaced by ``[REDACTED]``."""
    for pattern in _SECRETS:
        text = pattern.sub(REDACTED, text)
    text = _ASSIGNED.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{REDACTED}{m[3]}", text)
    return _URL_PASSWORD.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: (REDACTED if _secret_key(k) else redact_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def _secret_key(key: str) -> bool:
    return bool(re.fullmatch(r"(?i)(password|secret|api_?key|token|authorization)", key))
