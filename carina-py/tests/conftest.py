"""Fixtures of the carina Python tests (helpers are in helpers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import carina


@pytest.fixture
def run_in(tmp_path: Path):
    """Starts a run writing under ``tmp_path`` (constant 50 W, 10 ms sampling), yields it, and
    finishes it if the test did not."""
    started: list[carina.Run] = []

    def start(job: str = "test", **settings: Any) -> carina.Run:
        settings.setdefault("constant_watts", 50.0)
        settings.setdefault("sample_interval", 0.01)
        run = carina.Run(job, tmp_path / "runs", **settings).start()
        started.append(run)
        return run

    yield start
    for run in started:
        if run.summary is None and run.run_id is not None:
            try:
                run.finish()
            except RuntimeError:
                pass


@pytest.fixture(autouse=True, scope="session")
def _no_carina_environment():
    """The tests set what they need: a CARINA_DIR or CARINA_RUN_ID of the shell (or of a
    surrounding `carina run`) would change where and how their runs write."""
    import os

    saved = {k: v for k, v in os.environ.items() if k.startswith("CARINA_") and k != "CARINA_BIN"}
    for k in saved:
        del os.environ[k]
    yield
    os.environ.update(saved)
