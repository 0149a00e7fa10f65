"""The batch in this process: one input at a time, so memory stays flat as the batch grows."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from .runlog import RunLog
from .segment import segment_file


def iter_serial(jobs: list, model, out, settings, params: dict, log: RunLog, skip_existing: bool = False,
                stop=None, progress: bool = True) -> Iterator[dict]:
    """Segment ``jobs`` in order with :func:`~.segment.segment_file`, yielding each record when its
    input is finished (it is already in ``log``, and ``run.json`` rewritten).

    ``stop`` is polled between batches of tiles; a stop request (``StopRequested``) leaves the
    inputs already written in place and the rest pending. ``progress`` shows tqdm bars on stderr
    (files, and batches of tiles within a file) when stderr is a terminal.
    """
    from tqdm.auto import tqdm

    off = None if progress else True
    with tqdm(total=len(jobs), unit="file", desc="files", disable=off) as files:
        for job in jobs:
            tiles = tqdm(unit="batch", desc=job.stem, leave=False, disable=off)

            def poll(bar=tiles) -> bool:
                bar.update(1)
                return bool(stop and stop())

            try:
                record = segment_file(job, model, out, settings, params, skip_existing, stop=poll)
            finally:
                tiles.close()
            log.update(record)
            files.update(1)
            yield record


def run_serial(jobs: list, model, out, settings, params: dict, log: RunLog, skip_existing: bool = False,
               on_record: Callable[[dict], None] | None = None, stop=None, progress: bool = True) -> list[dict]:
    """:func:`iter_serial` to the end; each record also goes to ``on_record``. Returns the records."""
    records = []
    for record in iter_serial(jobs, model, out, settings, params, log, skip_existing, stop, progress):
        records.append(record)
        if on_record is not None:
            on_record(record)
    return records
