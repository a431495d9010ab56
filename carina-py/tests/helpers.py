"""Shared helpers of the carina Python tests (fixtures are in conftest.py).

Runs are process-wide (one at a time), so tests that start one in this process finish it
before they return; tests about the environment, interpreter exit, fork and ``carina run``
run a script in a child interpreter (``run_script``).

The ``carina`` binary (``cargo build -p carina-cli``) reads run files back: its path comes
from ``CARINA_BIN``, else ``target/debug/carina`` or ``target/release/carina`` of the checkout.
A missing binary fails the tests that need it (it is never a reason to pass).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional

import pytest

import carina

REPO = Path(__file__).resolve().parents[2]


def read_records(path: "os.PathLike[str] | str") -> list[dict[str, Any]]:
    """Every record of a run file; each line must be whole JSON."""
    text = Path(path).read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path}: the last line is not whole"
    return [json.loads(line) for line in text.splitlines()]


def of_type(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == kind]


def steps_named(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "step" and r["name"] == name]


def summary_named(records: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [r for r in records if r["type"] == "step_summary" and r["name"] == name]
    assert len(found) == 1, f"{len(found)} step_summary records named {name!r}"
    return found[0]


def run_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.jsonl"))


def spin(seconds: float) -> None:
    """Busy-waits for CPU time, so that steps use CPU (and get energy)."""
    import time

    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for _ in range(1000):
            x = (x * 6364136223846793005 + 1) & 0xFFFFFFFFFFFFFFFF


def carina_bin() -> Path:
    env = os.environ.get("CARINA_BIN")
    candidates = [Path(env)] if env else [
        REPO / "target" / "debug" / "carina",
        REPO / "target" / "release" / "carina",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    pytest.fail(
        "the carina binary is needed to read run files back: build it with "
        "`cargo build -p carina-cli` and set CARINA_BIN to target/debug/carina "
        f"(looked at {', '.join(str(c) for c in candidates)})"
    )


def carina_cli(*args: str, check: bool = True, env: Optional[dict[str, str]] = None,
               cwd: Optional[Path] = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(carina_bin()), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, (
            f"carina {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without CARINA_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARINA_")}
    if "CARINA_BIN" in os.environ:
        env["CARINA_BIN"] = os.environ["CARINA_BIN"]
    env.update(extra)
    return env


def run_script(source: str, *, env: Optional[dict[str, str]] = None, cwd: Optional[Path] = None,
               timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs ``source`` (dedented) in a child interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        cwd=cwd,
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, (
            f"script exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc
