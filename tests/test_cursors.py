"""The shared cursor codec: round trips, and anything else is a 400."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from workbench import cursors
from workbench.errors import BadRequest

Seq = Annotated[int, msgspec.Meta(ge=0, le=2**62)]


def test_round_trip() -> None:
    value = ["fp", "2026-01-01", 42]
    assert cursors.decode(cursors.encode(value), tuple[str, str, int]) == tuple(value)
    assert "=" not in cursors.encode(value)


@pytest.mark.parametrize(
    "bad",
    ["!!!", cursors.encode("text"), cursors.encode(-1), cursors.encode(2**64), "²", ""],
)
def test_anything_else_is_a_bad_request(bad: str) -> None:
    with pytest.raises(BadRequest, match="invalid cursor"):
        cursors.decode(bad, Seq)
