"""The wheel: the package and its data files only (no dev servers, demo, tests or benchmarks).

Builds the wheel with pip, as a release would, from a copy of the clone (so the build leaves no
``build/`` or ``*.egg-info`` behind in the working tree), then reads its file list.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "airflow_failnotify"
# What a build must not copy from the clone: VCS data, environments, caches and earlier build output.
NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    ".demo",
    "test-artifacts",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def package_data_patterns() -> list[str]:
    """The ``package_data`` patterns of setup.py for the package, read from its source."""
    tree = ast.parse((REPO_ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "package_data":
            data = ast.literal_eval(node.value)
            return list(data[PACKAGE])
    raise AssertionError("setup.py has no package_data")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_COPIED)
    out = work / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", ".", "-w", str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    (wheel,) = out.glob("airflow_failnotify-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        yield set(archive.namelist())


def test_wheel_holds_the_package_only(wheel_names: set[str]) -> None:
    top_levels = {name.split("/", 1)[0] for name in wheel_names}
    assert top_levels == {PACKAGE, next(t for t in top_levels if t.endswith(".dist-info"))}
    assert not [n for n in wheel_names if "devtools" in n or "demo" in Path(n).name]
    assert not [n for n in wheel_names if n.startswith(("tests/", "bench/", "devtools/", "dags/"))]


def test_wheel_holds_the_templates(wheel_names: set[str]) -> None:
    for template in (REPO_ROOT / PACKAGE / "templates" / "email").iterdir():
        assert f"{PACKAGE}/templates/email/{template.name}" in wheel_names
    assert f"{PACKAGE}/plugins/templates/failnotify/_layout.html" in wheel_names
    assert f"{PACKAGE}/plugins/static/failnotify/failnotify.css" in wheel_names


def test_wheel_holds_the_react_bundle(wheel_names: set[str]) -> None:
    from airflow_failnotify.api.web import BUNDLE_FILE

    assert f"{PACKAGE}/plugins/static/ui/{BUNDLE_FILE}" in wheel_names, "run `make ui` before building"
    assert not [n for n in wheel_names if "node_modules" in n or n.endswith((".tsx", ".ts"))]


@pytest.mark.parametrize("pattern", package_data_patterns())
def test_every_package_data_pattern_names_shipped_files(pattern: str, wheel_names: set[str]) -> None:
    matches = [p for p in (REPO_ROOT / PACKAGE).glob(pattern) if p.is_file() and "__pycache__" not in p.parts]
    assert matches, f"package_data pattern {pattern!r} matches no file of the package"
    for path in matches:
        assert path.relative_to(REPO_ROOT).as_posix() in wheel_names
