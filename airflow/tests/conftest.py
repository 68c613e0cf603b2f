"""Shared fixtures: an isolated AIRFLOW_HOME for imports, the starload binary."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Importing airflow creates $AIRFLOW_HOME (default ~/airflow): keep it in a throwaway
# directory, and keep the developer's own Airflow settings and connections out.
for _name in list(os.environ):
    if _name.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")):
        del os.environ[_name]
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="starload-airflow-unit-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

AIRFLOW_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = AIRFLOW_DIR.parent


def find_starload() -> str | None:
    """$STARLOAD_BIN, else the cargo debug build, else `starload` on PATH."""
    candidates = []
    if os.environ.get("STARLOAD_BIN"):
        candidates.append(os.environ["STARLOAD_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/starload-target")
    candidates.append(os.path.join(target, "debug", "starload"))
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("starload")


@pytest.fixture(scope="session")
def starload_bin(tmp_path_factory):
    """The real binary, hard-linked into the test's directory when possible so that a
    concurrent `cargo build` replacing it cannot pull it away mid-test."""
    found = find_starload()
    if not found:
        pytest.fail(
            "starload binary not found: set STARLOAD_BIN, or build it (`cargo build --bin starload`); "
            "run_tests.sh does this"
        )
    linked = tmp_path_factory.mktemp("bin") / "starload"
    try:
        os.link(found, linked)
    except OSError:
        yield found
        return
    try:
        yield str(linked)
    finally:
        linked.unlink()  # do not keep an old (large) build alive in pytest's kept temp dirs
