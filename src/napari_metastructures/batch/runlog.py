"""``run.json`` of a batch, rewritten (atomically) each time an input finishes."""
from __future__ import annotations

import time
from pathlib import Path

from ..core import jsonsafe
from ..core.atomic import atomic_write_text

#: Record statuses: ``pending`` until an input is reached.
STATUSES = ("done", "skipped", "failed", "pending")


class RunLog:
    """The batch's report: a header, one record per input, and a summary kept up to date.

    Parameters
    ----------
    path : Path
        Where ``run.json`` goes; written at once (every input pending) and after each :meth:`update`.
    header : dict
        Command, version, model, device, settings...
    jobs : list of Job
    """

    def __init__(self, path: Path, header: dict, jobs: list) -> None:
        self.path = Path(path)
        self.t0 = time.perf_counter()
        self.header = dict(header)
        self.records = {j.stem: {**j.as_dict(), "status": "pending"} for j in jobs}
        self.extra: dict = {}
        self.write()

    def update(self, record: dict) -> None:
        """Store one input's record (by its stem, with ``finished_s``: seconds since the batch
        started) and rewrite ``run.json``."""
        self.records[record["stem"]] = {**record, "finished_s": time.perf_counter() - self.t0}
        self.write()

    def summary(self) -> dict:
        counts = {s: 0 for s in STATUSES}
        for r in self.records.values():
            counts[r["status"]] += 1
        return {**counts, "total": len(self.records),
                "failed_files": [{"path": r["path"], "reason": r["reason"]}
                                 for r in self.records.values() if r["status"] == "failed"],
                "elapsed_s": time.perf_counter() - self.t0}

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records.values() if r["status"] == "failed"]

    def report(self, finished: bool = False) -> dict:
        files = list(self.records.values())
        outputs = [p for r in files if r["status"] == "done" for p in r.get("outputs", [])]
        return {**self.header, **self.extra, "finished": finished, "summary": self.summary(),
                "files": files, "outputs": outputs}

    def write(self, finished: bool = False) -> Path:
        return atomic_write_text(self.path, jsonsafe.dumps(self.report(finished), indent=2))

    def finish(self, **extra) -> Path:
        """Add ``extra`` (timings...) and write the final report (``finished: true``)."""
        self.extra.update(extra)
        return self.write(finished=True)

    def summary_lines(self) -> list[str]:
        """What a person reads at the end: counts, then each failed file with its reason."""
        s = self.summary()
        lines = [f"{s['done']} done, {s['skipped']} skipped, {s['failed']} failed of {s['total']} file(s)"]
        for f in s["failed_files"]:  # the reason usually names the file already
            named = Path(f["path"]).name in f["reason"]
            lines.append(f"  failed: {f['reason']}" if named else f"  failed: {f['path']}: {f['reason']}")
        return lines
