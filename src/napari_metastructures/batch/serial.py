"""The batch in this process: one input at a time, so memory stays flat as the batch grows."""
from __future__ import annotations

from collections.abc import Callable

from .runlog import RunLog
from .segment import segment_file


def run_serial(jobs: list, model, out, settings, params: dict, log: RunLog, skip_existing: bool = False,
               on_record: Callable[[dict], None] | None = None, stop=None, progress: bool = True) -> list[dict]:
    """Segment ``jobs`` in order with :func:`~.segment.segment_file`; returns their records.

    Each record goes into ``log`` (``run.json`` is rewritten) and to ``on_record`` as soon as its
    input is finished. ``stop`` is polled between batches of tiles; a stop request leaves the
    inputs already written in place and the rest pending. ``progress`` shows tqdm bars on stderr
    (files, and batches of tiles within a file) when stderr is a terminal.
    """
    from tqdm.auto import tqdm

    records = []
    with tqdm(total=len(jobs), unit="file", desc="files", disable=None if progress else True) as files:
        for job in jobs:
            tiles = tqdm(unit="batch", desc=job.stem, leave=False, disable=None if progress else True)

            def poll(bar=tiles) -> bool:
                bar.update(1)
                return bool(stop and stop())

            try:
                record = segment_file(job, model, out, settings, params, skip_existing, stop=poll)
            finally:
                tiles.close()
            log.update(record)
            records.append(record)
            files.update(1)
            if on_record is not None:
                on_record(record)
    return records
