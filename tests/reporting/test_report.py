"""The batch report: its data (golden), its HTML, open records, masking, the CLI, comparison.

Regenerate the golden data on purpose with ``CELLAUTO_REGEN_GOLDEN=1 pytest tests/reporting``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_records import PATIENT

from cellauto.cli import main
from cellauto.records import compare_report, report
from cellauto.records.reporting import report_data
from cellauto.records.reporting.batch import SECTIONS

GOLDEN = Path(__file__).parent.parent / "golden" / "reporting"
REGEN = os.environ.get("CELLAUTO_REGEN_GOLDEN") == "1"


class _Text(HTMLParser):
    """The visible text of a page, line by line, and the ids of its sections."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.sections: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "title", "svg"):
            self._skip += 1
        if tag == "section":
            self.sections.append(dict(attrs).get("id") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title", "svg"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.lines.append(data.strip())


def _text(file: Path) -> _Text:
    parser = _Text()
    parser.feed(file.read_text(encoding="utf-8"))
    return parser


def test_report_data_matches_the_golden_file(make_record: Callable[..., Path]) -> None:
    path = make_record("B-GOLD")
    summary = report_data(path).summary()
    text = json.dumps(summary, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    # file digests depend on the Arrow library's bytes, the version on the release: not the data
    text = re.sub(r"SHA-256 [0-9a-f]{64}", "SHA-256 <digest>", text)
    text = re.sub(r"cellauto \d+\.\d+\.\d+[\w.+-]*", "cellauto <version>", text)
    golden = GOLDEN / "small.json"
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing; run with CELLAUTO_REGEN_GOLDEN=1 to create it"
    assert json.loads(text) == json.loads(golden.read_text(encoding="utf-8"))


def test_report_shows_every_section_and_what_each_plot_draws(
    make_record: Callable[..., Path],
) -> None:
    path = make_record("B-0001", points=3000)
    out = report(path)
    assert out == path.parent / "B-0001.report.html"
    page = _text(out)
    assert page.sections == list(SECTIONS)
    assert page.lines[0] == "Batch B-0001: complete: completed; record sealed and intact."
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html), "fetches something"
    assert "<script" not in html
    assert html.count("<svg") == 7  # six channels and cell density
    drawn = [int(n) for n in re.findall(r"draws (\d+) of 3,000 points", html)]
    assert len(drawn) == 7
    assert all(700 <= n <= 802 for n in drawn), drawn
    data = report_data(path)
    temperature = next(t for t in data.trends if t.channel == "chamber.temperature")
    assert temperature.maximum == 38.6, "the spike survives the reduction"
    assert temperature.limits is not None
    assert temperature.limits.alarm_high == 38
    assert [code for _, code in temperature.alarms] == ["temperature_high"]
    assert {row.category for row in data.timelines["cocoon-1"]} >= {
        "program",
        "step",
        "prompt",
        "alarm",
        "transfer",
        "gap",
    }
    assert [s.meaning for s in data.signatures] == ["responsibility", "approval"]
    result = data.results[0].properties
    assert ("harvested_cells", "2.1e+09", "{cells}") in result
    assert ("viability", "94.5", "%") in result


def test_identifiers_are_masked_unless_asked(make_record: Callable[..., Path]) -> None:
    path = make_record("B-0001")
    masked = report(path).read_text(encoding="utf-8")
    assert PATIENT not in masked
    assert "LOT-2026-0042" not in masked
    assert "••••11" in masked
    unmasked = report(path, path.parent / "full.html", unmask=True).read_text(encoding="utf-8")
    assert PATIENT in unmasked
    assert "LOT-2026-0042" in unmasked


def test_an_open_record_says_so_on_its_first_line(make_record: Callable[..., Path]) -> None:
    path = make_record("B-OPEN", seal=False)
    page = _text(report(path))
    assert page.lines[0].startswith("RECORD NOT SEALED: batch B-OPEN")
    assert "crashed" not in page.lines[0]
    assert page.sections == list(SECTIONS)


def test_a_crashed_record_says_so_on_its_first_line(make_record: Callable[..., Path]) -> None:
    path = make_record("B-CRASH", seal=False)
    segment = sorted((path / "samples").iterdir())[-1]
    with open(segment, "ab") as handle:  # a write cut short by a kill
        handle.write(b"\xff\xff\xff\xff\x10\x00\x00\x00partial")
    first = _text(report(path)).lines[0]
    assert first.startswith("RECORD NOT SEALED: batch B-CRASH")
    assert "crashed" in first


def test_cli_writes_the_report_and_the_comparison(
    make_record: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first = make_record("B-0001")
    make_record("B-0002", seed=8)
    out = first.parent / "reports" / "one.html"
    assert main(["records", "report", str(first), "-o", str(out)]) == 0
    assert out.is_file()
    assert str(out) in capsys.readouterr().out
    assert main(["records", "report", str(first.parent), "--compare"]) == 0
    compared = first.parent / "compare.report.html"
    page = _text(compared)
    assert page.lines[0] == f"Comparison of 2 batches under {first.parent.name}"
    html = compared.read_text(encoding="utf-8")
    assert "chamber.cell_density on cocoon: 2 batches overlaid" in html
    assert "harvested_cells" in html
    assert html.count("2.1e+09 {cells}") == 2


def test_compare_of_an_unknown_product_is_an_error(make_record: Callable[..., Path]) -> None:
    from cellauto.errors import RecordError

    path = make_record("B-0001")
    with pytest.raises(RecordError, match="of product 'nothing'"):
        compare_report(path.parent, product="nothing")


def test_an_alarm_is_marked_on_its_functional_units_channels() -> None:
    from cellauto.records.reporting.data import _concerns

    assert _concerns("device", "reagents.temperature")
    assert _concerns("chamber", "chamber.temperature")
    assert not _concerns("chamber", "chamberlain.temperature")
    assert not _concerns("reagents", "chamber.temperature")
