"""A 14-day oral mucosal cell-sheet run with all ten vessels at max speed: every sheet reaches
confluence, medium is changed on schedule, every image on the share becomes a result file with
its SHA-256, and per-vessel confluency is recorded as it grows."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

import cellauto
from cellauto.schema import EventKind, Sample


async def test_a_14_day_sheet_run_with_ten_vessels(tmp_path: Path) -> None:
    url = f"acc200+sim://?speed=max&seed=2&scan=3600&poll=1800&share={tmp_path / 'share'}"
    device = await cellauto.connect(url, device_id="iace-1")
    try:
        samples = device.subscribe([f"vessel{i}.confluency" for i in range(1, 11)])
        events = device.events()
        run = await device.start_program("oral mucosal cell sheet", {"vessel_count": 10})
        async for event in events:
            if event.kind is EventKind.PROMPT:
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "op")
            if event.kind is EventKind.PROGRAM_FINISHED:
                break
        result = await run
        await device.read("vessel1.medium_changes")
        changes = [
            int((await device.read(f"vessel{i}.medium_changes")).value) for i in range(1, 11)
        ]
    finally:
        await device.close()
    assert result.outcome == "complete"
    assert result.total_runtime > timedelta(days=13)
    assert all(n >= 6 for n in changes), changes  # every 48 h for 13 days
    images = [f for f in result.files if f.mime_type == "image/png"]
    assert len(images) >= 10 * 13  # daily per vessel, and a final observation
    assert len({f.name for f in images}) == len(images)
    watched = device.share.watched  # type: ignore[attr-defined]
    assert watched  # the share watcher saw images land
    assert set(watched.values()) <= set(images)
    for image in images:
        assert sha256_of(image.path) == image.sha256
    by_vessel: dict[str, list[Sample]] = {}
    async for sample in samples:
        by_vessel.setdefault(sample.channel, []).append(sample)
    assert len(by_vessel) == 10
    for channel, series in by_vessel.items():
        values = [float(s.value) for s in series]
        assert values == sorted(values), channel  # a sheet only grows
        assert values[-1] > 90.0, channel  # and reaches confluence


def sha256_of(url: str) -> str:
    return hashlib.sha256(Path(unquote(urlparse(url).path)).read_bytes()).hexdigest()
