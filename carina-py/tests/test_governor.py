"""The governor: permits, policies, schedules, control records."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path

import pytest

import carina
from helpers import of_type, read_records

ALWAYS_PEAK = """
timezone = "UTC"
[[peak]]
days = "daily"
hours = "00:00-24:00"
tariff = 0.4
"""


def test_permits_bound_the_concurrency(run_in) -> None:
    run = run_in()
    gov = run.governor(policy="baseline", nominal=2)
    assert (gov.allowed, gov.max_allowed, gov.nominal, gov.in_use) == (2, 2, 2, 0)
    with gov.permit() as p1:
        assert p1.held and gov.in_use == 1
        p2 = gov.try_permit()
        assert p2 is not None and gov.in_use == 2
        assert gov.try_permit() is None, "no third permit at nominal 2"
        with pytest.raises(TimeoutError):
            gov.permit(timeout=0.05)
        p2.release()
        p2.release()  # twice is harmless
        assert not p2.held and gov.in_use == 1
    assert not p1.held and gov.in_use == 0
    status = gov.status()
    assert status["mode"] in ("off-peak", "peak")
    assert status["allowed"] == 2 and status["policy"] == "baseline"
    assert set(status) >= {"mode", "allowed", "nominal", "in_use", "waiting", "peak",
                           "tariff_per_kwh", "next_change", "rescue", "changes", "policy"}
    records = read_records(run.finish().run_file)
    controls = of_type(records, "control")
    assert controls and controls[0]["policy"] == "baseline" and controls[0]["nominal"] == 2


def test_a_waiting_worker_gets_the_released_permit(run_in) -> None:
    run_in()
    gov = carina.Governor(nominal=1)
    got: list[float] = []
    held = gov.permit()

    def worker() -> None:
        with gov.permit():
            got.append(time.monotonic())

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.1)
    assert got == [], "the worker waits (with the interpreter released: this thread runs)"
    released_at = time.monotonic()
    held.release()
    t.join(timeout=5)
    assert len(got) == 1 and got[0] >= released_at


def test_a_schedule_and_policy_from_files(tmp_path: Path, run_in) -> None:
    schedule = tmp_path / "peak.toml"
    schedule.write_text(ALWAYS_PEAK)
    run = run_in()
    gov = run.governor(schedule=schedule, policy="defer", nominal=3)
    status = gov.status()
    assert status["peak"] is True and status["tariff_per_kwh"] == pytest.approx(0.4)
    assert gov.mode == "paused" and gov.allowed == 0
    assert gov.try_permit() is None
    # A deadline that is already due rescues the job: nominal concurrency again.
    gov.set_deadline(datetime.datetime.now(datetime.timezone.utc))
    assert gov.mode == "deadline-rescue" and gov.allowed == 3
    gov.set_deadline(None)
    assert gov.allowed == 0
    gov.set_deadline("2000-01-01T00:00:00Z")
    gov.set_remaining(10.0, 1.0)
    assert gov.allowed == 3
    throttle = carina.Governor(schedule=schedule, policy="throttle:peak_fraction=0.25",
                               nominal=8)
    assert throttle.allowed == 2 and throttle.policy == "throttle:peak_fraction=0.25"
    records = read_records(run.finish().run_file)
    modes = [c["mode"] for c in of_type(records, "control")]
    assert "paused" in modes and "deadline-rescue" in modes


def test_ctrl_c_interrupts_a_worker_waiting_for_a_permit(tmp_path: Path) -> None:
    import os
    import signal

    schedule = tmp_path / "peak.toml"
    schedule.write_text(ALWAYS_PEAK)
    gov = carina.Governor(schedule=schedule, policy="defer", nominal=1)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gov.permit()
    assert time.monotonic() - started < 5
    timer.join()
