"""The lock file: every requirement of the extras `make venv` installs is pinned, the pins satisfy setup.py,
the environment holds exactly them, and pip finds no broken requirement (the celery/kombu/redis set with the
pinned ``packaging``: kombu 5.7's redis extra needs another ``packaging``, so the lock keeps kombu 5.6)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCKED_EXTRAS = ("postgres", "celery")


def extras() -> dict[str, list[str]]:
    """``extras_require`` of setup.py, read from its source (setup.py runs setup() when imported)."""
    tree = ast.parse((REPO_ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "extras_require":
            return dict(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no extras_require")


def pins() -> dict[str, str]:
    pinned = {}
    for line in (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", line.strip())
        if match:
            pinned[canonicalize_name(match.group(1))] = match.group(2)
    return pinned


def test_make_venv_installs_the_locked_extras() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    installed = re.search(r"^EXTRAS := (\S+)$", makefile, re.MULTILINE)
    assert installed is not None
    assert set(LOCKED_EXTRAS) <= set(installed.group(1).split(","))


@pytest.mark.parametrize("extra", LOCKED_EXTRAS)
def test_every_requirement_of_the_extra_is_pinned_within_its_range(extra: str) -> None:
    pinned = pins()
    for text in extras()[extra]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} ({extra} extra) is not in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (text, pinned[name])
        for dependency in requirement.extras:  # e.g. celery[redis]: the redis client is pinned too
            assert dependency in pinned or canonicalize_name(dependency) in pinned, (text, dependency)


@pytest.mark.parametrize("name", ["apache-airflow-providers-celery", "celery", "kombu", "redis", "asyncpg",
                                  "packaging"])
def test_the_environment_holds_the_pinned_version(name: str) -> None:
    assert metadata.version(name) == pins()[canonicalize_name(name)]


def test_pip_finds_no_broken_requirement() -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_celery_executor_imports_with_the_locked_set() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import kombu.transport.redis, redis, asyncpg; "
         "from airflow.providers.celery.executors.celery_executor import CeleryExecutor"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
