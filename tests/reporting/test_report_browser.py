"""The report of a demo-like record in a real browser: Debian's headless Chromium.

`make test` installs the ``chromium-headless-shell`` package where it can (root with apt); the
test is skipped, saying why, where no headless Chromium is installed.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from chromium import Chromium, find_chromium

from cellauto.records import report
from cellauto.records.reporting.batch import SECTIONS

BINARY = find_chromium()
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="no headless Chromium: install Debian's chromium-headless-shell package "
    "(`make test` does so when run as root on a system with apt)",
)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_renders_without_errors_and_prints(
    make_record: Callable[..., Path], tmp_path: Path
) -> None:
    assert BINARY is not None
    path = make_record("B-DEMO-LIKE", points=20_000)  # 140,000 samples over seven channels
    page = report(path)
    with Chromium(BINARY) as browser:
        browser.load(page)
        assert browser.problems() == []
        assert browser.requests() == [page.resolve().as_uri()], "the page fetched something"
        sections = browser.evaluate("[...document.querySelectorAll('section')].map(s => s.id)")
        assert sections == list(SECTIONS)
        first = browser.evaluate("document.body.innerText.split('\\n')[0]")
        assert first == "Batch B-DEMO-LIKE: complete: completed; record sealed and intact."
        svgs = browser.evaluate(
            "[...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect())"
            ".filter(r => r.width > 500 && r.height > 100).length"
        )
        assert svgs == 7, "every trend is drawn at a readable size"
        shot = browser.screenshot()
        assert _png_size(shot) == (1100, 1400)
        assert len(shot) > 30_000, "a blank page compresses to a few kB"
        a4 = browser.pdf()
        letter = browser.pdf((8.5, 11.0))
    (tmp_path / "report.png").write_bytes(shot)
    for pdf in (a4, letter):
        assert pdf.startswith(b"%PDF-")
        pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert 3 <= pages <= 40, pages
