"""The "start from" row of the training widgets: warm start from a saved model (issue 14).

An empty path means fresh weights. The file is only checked for existence here (cheap, on the GUI
thread); whether its settings fit is checked by the engine in the worker
(:mod:`..core.training.warm_start`), and a mismatch reaches the status line as one sentence.
"""
from __future__ import annotations

from pathlib import Path

from magicgui.widgets import ComboBox, Container, FileEdit

TIP_PATH = ("Start training from a saved model (.pt from Save model…, igtt or train --save-model) instead of "
            "random weights. Empty: fresh weights. Recorded in the output layers' metadata (params['init']).")
TIP_PART = ("whole network: every weight from the file (same architecture, encoder, depth and decoder widths); "
            "encoder only: the encoder from the file, a fresh decoder (e.g. a model of another structure).")


class InitRow(Container):
    """``value``: ``(path, part)`` for ``init=``, or None for fresh weights."""

    def __init__(self) -> None:
        self.path = FileEdit(label="start from", mode="r", filter="*.pt", tooltip=TIP_PATH)
        self.part = ComboBox(label="start with", value="all", tooltip=TIP_PART,
                             choices=[("whole network", "all"), ("encoder only", "encoder")])
        super().__init__(widgets=[self.path, self.part], labels=True)

    def _path(self) -> Path | None:
        text = str(self.path.line_edit.value).strip()
        return Path(text).expanduser() if text and text != "." else None

    @property
    def value(self) -> tuple | None:
        path = self._path()
        return None if path is None else (str(path), str(self.part.value))

    def problem(self) -> str:
        """Why Run is disabled because of this row ("" when fine)."""
        path = self._path()
        if path is not None and not path.is_file():
            return "start from: no such file."
        return ""

    def record(self) -> dict | None:
        value = self.value
        return None if value is None else {"path": value[0], "part": value[1]}
