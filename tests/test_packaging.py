"""The package installs as a napari plugin: manifest, wheel contents, core/UI split, CLI."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "napari_metastructures"

BLOCKER = """
import importlib.abc, pkgutil, sys
BLOCKED = ("napari", "qtpy", "magicgui", "PyQt5", "PyQt6", "PySide2", "PySide6")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"core must not import {name}")
sys.meta_path.insert(0, Block())
import napari_metastructures.batch as batch
import napari_metastructures.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, "napari_metastructures.core.")]
names += [m.name for m in pkgutil.walk_packages(batch.__path__, "napari_metastructures.batch.")]
for name in names:
    __import__(name)
print(len(names))
"""


def test_core_and_batch_import_without_napari_qt_or_magicgui():
    out = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 3  # device, validate, ... really imported


def test_manifest_found_in_editable_install():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-metastructures")
    assert manifest.name == "napari-metastructures"
    widgets = {w.display_name for w in manifest.contributions.widgets}
    assert {"Noisy labels", "Meta-structure density", "iGTT segmentation", "Train from rough labels"} <= widgets
    # one file: the top-level manifest is a link to the packaged one
    assert (ROOT / "napari.yaml").resolve() == (PKG / "napari.yaml").resolve()


def test_npe2_validate_passes():
    npe2 = Path(sys.executable).with_name("npe2")
    out = subprocess.run([str(npe2), "validate", "napari-metastructures"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


def test_every_manifest_command_resolves():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-metastructures")
    for command in manifest.contributions.commands:
        module_name, _, attr = command.python_name.partition(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attr)), command.python_name


@pytest.mark.slow
def test_built_wheel_holds_manifest_and_sample_data(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    wheel = next(tmp_path.glob("napari_metastructures-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "napari_metastructures/napari.yaml" in names
    assert any(n.startswith("napari_metastructures/sample_data/nuclei/") and n.endswith(".tif") for n in names)
    assert any(n.endswith("SOURCE.md") for n in names)
    yeast = "napari_metastructures/sample_data/yeast_mito_3d/"
    assert {yeast + "yeast_mito_t3.ome.tif", yeast + "SOURCE.md"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "napari.manifest" in text and "napari_metastructures:napari.yaml" in text

    # Install the wheel alone into a folder and let npe2 find the manifest there.
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )
    assert pip.returncode == 0, pip.stderr
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import importlib.metadata as md;"
        "dist = md.distribution('napari-metastructures'); assert sys.argv[1] in str(dist._path), dist._path;"
        "from npe2 import PluginManifest;"
        "m = PluginManifest.from_distribution('napari-metastructures');"
        "print(m.name, len(m.contributions.sample_data))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    name, n_samples = res.stdout.split()
    assert name == "napari-metastructures" and int(n_samples) >= 5


def test_cli_lists_every_subcommand():
    from napari_metastructures import cli

    for name in cli.SUBCOMMANDS:
        importlib.import_module(f"napari_metastructures.cli.{name}")
    out = subprocess.run([str(Path(sys.executable).with_name("metastructures")), "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0
    for name in cli.SUBCOMMANDS:
        assert name.replace("_", "-") in out.stdout  # export_bioimageio is export-bioimageio


def test_hub_metadata_license_urls_and_classifiers():
    """Issue 15: what the napari hub and PyPI show (license expression, links, classifiers)."""
    from importlib.metadata import metadata

    meta = metadata("napari-metastructures")
    assert meta["License-Expression"] == "BSD-3-Clause" and "LICENSE" in (meta.get_all("License-File") or [])
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    urls = {u.split(",")[0] for u in meta.get_all("Project-URL")}
    assert {"Source Code", "Bug Tracker", "Documentation", "User Support"} <= urls
    classifiers = meta.get_all("Classifier")
    for needed in ("Framework :: napari", "Intended Audience :: Science/Research", "Operating System :: OS Independent",
                   "Development Status :: 3 - Alpha"):
        assert needed in classifiers


def test_widgets_sit_in_the_layers_menus():
    """Issue 15: Layers > Segment (iGTT, rough labels), > Annotate (noisy labels), > Visualize (density)."""
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(PKG / "napari.yaml")
    menus = {key: [item.command for item in items] for key, items in manifest.contributions.menus.items()}
    assert menus["napari/layers/segment"] == ["napari-metastructures.igtt", "napari-metastructures.rough_labels"]
    assert menus["napari/layers/annotate"] == ["napari-metastructures.noisy_labels"]
    assert menus["napari/layers/visualize"] == ["napari-metastructures.density"]
    assert "Segmentation" in manifest.categories


def test_release_script_makes_readme_links_absolute():
    """Issue 15: PyPI and the hub render only absolute links; the script makes them from pyproject."""
    import runpy

    script = runpy.run_path(str(ROOT / "scripts" / "absolute_links.py"))
    base = script["source_url"]()
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "absolute_links.py"), "--ref", "v1"],
                         capture_output=True, text=True, check=True).stdout
    assert f"({base}/raw/v1/docs/figures/igtt_streaming.gif)" in out  # the README's picture
    assert f"[iGTT]({base}/blob/v1/docs/igtt.md)" in out
    assert "[napari](https://napari.org)" in out  # absolute links stay as they are
    assert "](docs/" not in out
    text = 'see [a](#usage), ![x](./docs/a.png "title"), [b](mailto:x@y.z)'
    assert script["absolute"](text, "https://h/p") == (
        'see [a](#usage), ![x](https://h/p/raw/main/docs/a.png "title"), [b](mailto:x@y.z)')
