"""Carina for Python: per-step time, energy and CO2e of batch jobs and training loops.

Mark steps, run, read the summary::

    import carina

    with carina.Run("train", carbon_zone="DE") as run:
        for epoch in range(3):
            with carina.step("epoch", items=len(data)):
                train(data)
    print(run.summary)                 # energy (measured or estimated), CO2e, per-step figures

    @carina.step                       # one step per call, named "module.qualname"
    def evaluate(batch): ...

    @carina.step("fetch", items=lambda urls: len(urls))
    async def fetch(urls): ...         # counts only while the coroutine runs

Steps record into the same Rust core as Carina's Rust API (one ring per thread, no lock), and
runs write the same run files (``carina summary``, ``carina report`` read them). With no run
active a step records nothing and costs about as much as an empty context manager, so
libraries can mark steps freely. Under ``carina run -- python3 job.py`` the Python run's steps
are merged into the parent's run file.

- ``Run``: one run per process; ``with`` or ``start()``/``finish()``; a run never finished is
  finished at interpreter exit.
- ``step`` / ``gpu_step``: context manager and decorator (functions, coroutines, generators).
- ``Governor``: peak-hour control of a job's concurrency (``run.governor(...)``).
- ``is_recording()``: whether steps record now.

Step names are kept for the life of the process, once per distinct name: names built from data
(``f"user-{id}"``) grow memory with each new name.
"""

from __future__ import annotations

import atexit as _atexit
import os as _os

from carina import _native
from carina._native import (
    Governor,
    Permit,
    Run,
    RunSummary,
    Step,
    StepSummary,
    __version__,
    gpu_step,
    is_recording,
    step,
)

__all__ = [
    "Governor",
    "Permit",
    "Run",
    "RunSummary",
    "Step",
    "StepSummary",
    "__version__",
    "gpu_step",
    "is_recording",
    "step",
]

# A run not finished by the program ends at interpreter exit with its summaries and run_end,
# so its file is whole (and a Python child of `carina run` leaves its file for the merge).
_atexit.register(_native._finish_at_exit)

# A child forked during a run records nothing and never writes the parent's file.
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_native._after_fork_in_child)
