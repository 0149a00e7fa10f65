"""Segment many files with a trained model, one at a time or on a Dask cluster.

- :mod:`.plan`: inputs (files, folders, globs) -> jobs with unique output stems; output names.
- :mod:`.segment`: one input: read, check, predict, write (a bad file gives a failed record).
- :mod:`.runlog`: ``run.json``, rewritten as inputs finish.
- :mod:`.serial`: the batch in this process.
- :mod:`.distributed`: the batch on Dask workers (optional extra ``[distributed]``).

No Qt here.
"""
from __future__ import annotations

from .plan import Job, expand_inputs, is_complete, output_files, output_path, tiff_files, tiff_stem
from .runlog import RunLog
from .segment import PredictSettings, segment_file, write_pair
from .serial import iter_serial, run_serial

__all__ = ["Job", "PredictSettings", "RunLog", "expand_inputs", "is_complete", "iter_serial", "output_files",
           "output_path", "run_serial", "segment_file", "tiff_files", "tiff_stem", "write_pair"]
