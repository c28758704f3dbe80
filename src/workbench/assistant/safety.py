"""Safety checks on what flows through a run.

- Prompt injection: retrieved text that tries to instruct the model is flagged, recorded on
  the run, and withheld from the model, so it cannot steer tool calls.
- Redaction: secrets and credentials are replaced before anything is stored or logged.
"""

from __future__ import annotations

import re
import unicodedata

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


from workbench.redaction import REDACTED, redact, redact_value  # noqa: E402

__all__ = ["REDACTED", "injection_flags", "redact", "redact_value"]
