"""Warm start: begin training from a saved model's weights, whole or encoder only.

A model that iGTT trained without labels, or one trained on rough labels, can start a new run. The
settings that shape the weights must match: architecture, encoder, encoder depth and input
channels, and for the whole network also the decoder widths and the number of classes. A mismatch
is an :class:`~..validate.InputError` that names the file and the settings on both sides.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..validate import InputError

#: What ``part`` may be: the whole network, or only its encoder (the decoder starts fresh).
INIT_PARTS = ("all", "encoder")

#: Network settings an encoder needs to match, then the extra ones the whole network needs.
_ENCODER_KEYS = ("arch", "encoder", "encoder_depth", "in_channels")
_ALL_KEYS = _ENCODER_KEYS + ("decoder_channels", "classes")


def read_init(path) -> tuple[dict, dict]:
    """``(model settings, state dict)`` of a saved model file (InputError naming it if unusable)."""
    from .model import read_payload

    payload = read_payload(path)
    config = json.loads(payload["config"])
    return dict(config.get("model") or {}), payload["state_dict"]


def _norm(key: str, value):
    if key == "decoder_channels" and value is not None:
        return [int(v) for v in value]
    if key == "arch" and value is None:
        return "unet"
    return value


def check_init(saved: dict, wanted: dict, part: str, label: str) -> None:
    """Raise InputError when ``saved`` model settings cannot start a network built with ``wanted``."""
    if part not in INIT_PARTS:
        raise InputError(f"init part {part!r}: use one of {', '.join(INIT_PARTS)}.")
    keys = _ALL_KEYS if part == "all" else _ENCODER_KEYS
    if part == "all" and wanted.get("decoder_channels") is None:
        keys = tuple(k for k in keys if k != "decoder_channels")  # smp's default widths on both sides
    differ = [k for k in keys if _norm(k, saved.get(k)) != _norm(k, wanted.get(k))]
    if differ:
        pairs = ", ".join(f"{k} {saved.get(k)!r} (this run: {wanted.get(k)!r})" for k in differ)
        hint = " or start from its encoder only" if part == "all" and set(differ) <= {"decoder_channels", "classes"} \
            else ""
        raise InputError(f"{label}: cannot start from this model: {pairs}; give matching settings{hint}.")


def apply_init(net, path, part: str, wanted: dict) -> dict:
    """Load the weights of the model file ``path`` into ``net`` (``part`` = "all" or "encoder").

    ``wanted`` holds the new network's settings (``arch``, ``encoder``, ``encoder_depth``,
    ``in_channels``, ``decoder_channels``, ``classes``). Returns the record of where the run started,
    for the new model's config.
    """
    label = Path(path).name
    saved, state = read_init(path)
    check_init(saved, wanted, part, label)
    if part == "encoder":
        state = {k: v for k, v in state.items() if k.startswith("encoder.")}
        own = {k for k in net.state_dict() if k.startswith("encoder.")}
        if set(state) != own:
            raise InputError(f"{label}: its encoder weights do not fit this network "
                             f"({len(set(state) ^ own)} tensor names differ).")
        net.load_state_dict(state, strict=False)
    else:
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise InputError(f"{label}: its weights do not fit this network ({first[:160]}).") from None
    return {"path": str(Path(path)), "part": part, "model": saved}


def start_from(net, init, wanted: dict) -> dict | None:
    """:func:`apply_init` for an optional ``init = (path, part)``; None (fresh weights) when not given."""
    return None if init is None else apply_init(net, init[0], init[1], wanted)
