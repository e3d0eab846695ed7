"""The request contract is written once and shown the same in every adapter's page."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"<!-- request-contract:start -->.*?<!-- request-contract:end -->", re.S)


def test_every_adapter_page_states_the_same_request_contract() -> None:
    pages = ["fastapi.md", "starlette.md", "litestar.md", "transactions.md"]
    blocks = {page: BLOCK.findall((DOCS / page).read_text()) for page in pages}
    assert all(len(found) == 1 for found in blocks.values()), blocks
    assert len({found[0] for found in blocks.values()}) == 1
