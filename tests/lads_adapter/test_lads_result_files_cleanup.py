"""Result files the LADS adapter downloads live in a temporary folder the adapter owns: a batch
copies them into its record, and the folder goes with the adapter (collected, or at the
latest when Python exits), so a run through `Batch` leaves nothing behind but its record."""

from __future__ import annotations

import gc
import hashlib
import tempfile
from pathlib import Path

import pytest

import cellauto
from cellauto import Q
from cellauto.records import open_batch


@pytest.mark.asyncio
async def test_a_batch_records_the_result_files_and_leaves_no_download_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    downloads = tmp_path / "tmp"
    downloads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(downloads))
    async with cellauto.Batch(
        "CQ-FILES-1",
        product="test",
        operator="olga",
        records=tmp_path / "records",
        prompts=cellauto.AutoAnswer(),
        signatures_for=(),
    ) as batch:
        device = await batch.connect("cellqualia+sim://?speed=max", device_id="cq")
        parameters = {"passages": 0, "passage_confluency": Q(50, "%")}
        result = await (await device.start_program("MSC expansion", parameters))
        folders = [p for p in downloads.iterdir() if p.name.startswith("cellauto-cq-results-")]
        assert len(folders) == 1  # the adapter's download folder, while the batch runs
        downloaded = {f.name: f.sha256 for f in result.files}
        assert set(downloaded) == {"phase-contrast-final.png", "cell-bank-summary.json"}
    record = open_batch(batch.path)
    (recorded,) = record.result_models()
    stored = {
        f.name: hashlib.sha256((batch.path / f.path).read_bytes()).hexdigest()
        for f in recorded.files
    }
    assert stored == {f"cq-{name}": digest for name, digest in downloaded.items()}
    assert folders[0].exists()  # the batch still holds its devices
    del batch, device, result
    gc.collect()
    assert not [p for p in downloads.iterdir() if p.name.startswith("cellauto-cq-results-")]
