"""The examples under examples/python run and write the run files their docstrings promise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, carina_cli, of_type, read_records, run_files, summary_named


def run_example(name: str, tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / name), "--out", str(out), *args],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "estimated" in done.stdout or "measured" in done.stdout, done.stdout
    (path,) = run_files(out)
    # The CLI reads the file back whole.
    assert "steps" in carina_cli("summary", str(path)).stdout
    return read_records(path)


@pytest.mark.skipif(importlib.util.find_spec("numpy") is None, reason="numpy is not installed")
def test_train_numpy_marks_epochs_batches_and_evaluation(tmp_path: Path) -> None:
    records = run_example("train_numpy.py", tmp_path, "--epochs", "2", "--samples", "2000")
    batch, epoch = summary_named(records, "batch"), summary_named(records, "epoch")
    assert epoch["count"] == 2 and epoch["items"] == 2 * 1600
    assert batch["items"] == 2 * 1600 and batch["count"] == 2 * 13
    assert summary_named(records, "evaluate")["items"] == 2 * 400
    # Batches nest in epochs.
    steps = of_type(records, "step")
    epochs = {s["id"] for s in steps if s["name"] == "epoch"}
    assert all(s["parent"] in epochs for s in steps if s["name"] == "batch")
    # The BLAS threads' share goes to the open steps (Python's default): the batches hold most
    # of the run's energy, whatever the machine's thread count.
    end = records[-1]
    assert end["unmarked_threads"] == "open-steps"
    assert batch["energy_j"] > 0.5 * end["energy_j"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_train_torch_marks_gpu_steps_where_there_is_cuda(tmp_path: Path) -> None:
    import torch

    records = run_example("train_torch.py", tmp_path, "--epochs", "1", "--samples", "20000",
                          "--hidden", "64")
    train = summary_named(records, "train_batch")
    assert train["items"] == 16000
    assert summary_named(records, "load")["items"] == 16000
    assert train.get("gpu", False) == torch.cuda.is_available()
