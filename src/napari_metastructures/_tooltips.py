"""All widget tooltips in one place, one dict per widget."""

NOISY_LABELS: dict[str, str] = {}

DENSITY: dict[str, str] = {}

IGTT: dict[str, str] = {}

ROUGH_LABELS: dict[str, str] = {}

COMMON: dict[str, str] = {}
