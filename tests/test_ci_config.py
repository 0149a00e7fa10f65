"""The GitHub workflows, tox.ini and the pre-commit config are valid (they cannot run here)."""
import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import yaml  # PyYAML comes with napari

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _check(*paths):
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).with_name("check-jsonschema"))
    return subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
                          capture_output=True, text=True)


def test_workflows_match_githubs_schema():
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "release.yml"}
    done = _check(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((ROOT / ".github/workflows/test.yml").read_text().replace("runs-on:", "run-on:"))
    assert _check(broken).returncode != 0


def test_matrix_covers_three_systems_four_pythons_and_the_lowest_versions():
    test = yaml.safe_load((ROOT / ".github/workflows/test.yml").read_text())
    matrix = test["jobs"]["test"]["strategy"]["matrix"]
    assert set(matrix["platform"]) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    assert matrix["python"] == ["3.10", "3.11", "3.12", "3.13"]
    assert {i["deps"] for i in matrix["include"]} == {"lowest", "pre"}
    release = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    assert release["jobs"]["publish"]["permissions"]["id-token"] == "write"  # trusted publishing
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert any(h["id"] == "ruff" for r in hooks["repos"] for h in r["hooks"])


def test_tox_runs_the_suite_and_the_linter():
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    assert "lint" in tox["tox"]["envlist"] and "pytest" in tox["testenv"]["commands"]
    assert "ruff check" in tox["testenv:lint"]["commands"]
