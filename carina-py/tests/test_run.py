"""A run from Python: its file, its summary, its settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import carina
from helpers import (
    carina_cli,
    of_type,
    read_records,
    run_files,
    spin,
    steps_named,
    summary_named,
)


def test_with_block_writes_a_run_file_shaped_like_rusts(tmp_path: Path) -> None:
    with carina.Run("shape", tmp_path, constant_watts=40.0, sample_interval=0.01) as run:
        assert run.is_recording
        assert carina.is_recording()
        with carina.step("load", items=3) as s:
            spin(0.02)
            s.add_items(2)
        with carina.step("solve"):
            spin(0.02)
    assert not carina.is_recording()
    summary = run.summary
    assert summary is not None
    path = Path(summary.run_file)
    assert path.parent == tmp_path / "shape"
    assert path.name == f"{run.run_id}.jsonl"
    records = read_records(path)

    start = records[0]
    assert start["type"] == "run_start"
    for field in ("schema", "run_id", "job", "host", "pid", "started_at", "energy_sources",
                  "carbon", "steps", "sample_interval_s", "scope", "carina_version"):
        assert field in start, field
    assert start["schema"] == 1 and start["job"] == "shape" and start["steps"] == "all"
    assert start["sample_interval_s"] == pytest.approx(0.01)
    assert start["scope"] == "process"

    end = records[-1]
    assert end["type"] == "run_end"
    for field in ("ended_at", "wall_s", "energy_j", "unattributed_j", "co2e_g", "items", "steps",
                  "dropped", "energy_kind", "own_cost", "method"):
        assert field in end, field
    assert end["steps"] == 2 and end["dropped"] == 0

    (load,) = steps_named(records, "load")
    for field in ("id", "parent", "thread", "start_s", "end_s", "items", "status", "energy_j",
                  "self_energy_j", "co2e_g"):
        assert field in load, field
    assert load["items"] == 5 and load["status"] == "ok" and load["parent"] is None
    assert load["energy_j"] > 0
    assert summary_named(records, "load")["count"] == 1
    assert summary_named(records, "solve")["count"] == 1
    assert of_type(records, "thread"), "the thread that stepped is named"

    # The summary carries run_end's figures.
    assert summary.energy_j == pytest.approx(end["energy_j"])
    assert summary.co2e_g == pytest.approx(end["co2e_g"])
    assert summary.wall_s == pytest.approx(end["wall_s"])
    assert summary.steps == 2 and summary.items == 5 and summary.dropped == 0
    assert summary.kind == end["energy_kind"] == "estimated"
    assert (summary.energy_low_j, summary.energy_high_j) == (
        pytest.approx(end["energy_low_j"]), pytest.approx(end["energy_high_j"]))
    assert summary.energy_low_j < summary.energy_j < summary.energy_high_j
    assert summary.method == end["method"]["label"] == "user constant"
    assert summary.lower_bound is False
    assert summary.carbon_g_per_kwh == pytest.approx(end["carbon_g_per_kwh"])
    assert summary.unattributed_j == pytest.approx(end["unattributed_j"])
    assert [s.name for s in summary.steps_summary] == ["load", "solve"]
    load_summary = summary.steps_summary[0]
    assert load_summary.count == 1 and load_summary.items == 5 and load_summary.gpu is False
    assert load_summary.energy_j == pytest.approx(summary_named(records, "load")["energy_j"])
    own = summary.own_cost
    assert set(own) == {"aggregator_cpu_s", "aggregator_energy_j", "step_cost_ns", "steps_cpu_s",
                        "steps_energy_j", "bytes_written", "cpu_share"}
    assert own["bytes_written"] == end["own_cost"]["bytes_written"]
    assert summary.warnings == []
    assert summary.energy_wh == pytest.approx(summary.energy_j / 3600)

    text = str(summary)
    assert text.startswith("energy ")
    assert "load" in text and "solve" in text and str(path) in text
    assert repr(summary).startswith("RunSummary(job='shape', energy_j=")

    # The CLI reads it back.
    out = carina_cli("summary", str(path)).stdout
    assert "load" in out and "solve" in out


def test_start_and_finish_without_with(tmp_path: Path) -> None:
    run = carina.Run("explicit", tmp_path, constant_watts=10.0).start()
    assert run.summary is None
    with carina.step("a"):
        pass
    summary = run.finish()
    assert summary.steps == 1
    # Finishing again returns the same summary; starting again is refused.
    assert run.finish() is summary
    assert run.summary is summary
    with pytest.raises(RuntimeError, match="started already"):
        run.start()


def test_a_run_object_is_finished_by_its_with_block_even_when_started(tmp_path: Path) -> None:
    run = carina.Run("both", tmp_path, constant_watts=10.0).start()
    with run as r:
        assert r is run
    assert run.summary is not None and not carina.is_recording()


def test_an_exception_leaving_the_run_block_finishes_the_run_and_propagates(tmp_path: Path) -> None:
    run = carina.Run("raises", tmp_path, constant_watts=10.0)
    with pytest.raises(ZeroDivisionError):
        with run:
            with carina.step("x"):
                1 / 0
    assert run.summary is not None
    records = read_records(run.summary.run_file)
    assert records[-1]["type"] == "run_end"
    assert steps_named(records, "x")[0]["status"] == "error"


def test_summary_mode_writes_summaries_only(tmp_path: Path) -> None:
    with carina.Run("sums", tmp_path, steps="summary", constant_watts=10.0) as run:
        for _ in range(100):
            with carina.step("tick"):
                pass
    records = read_records(run.summary.run_file)
    assert records[0]["steps"] == "summary"
    assert of_type(records, "step") == []
    assert summary_named(records, "tick")["count"] == 100


def test_settings_reach_the_run_file(tmp_path: Path) -> None:
    with carina.Run("settings", tmp_path, carbon_zone="DE", scope="host", constant_watts=10.0,
                    sample_interval=0.05) as run:
        run.set_items(1234)
        with carina.step("x", items=3):
            pass
    start, end = read_records(run.summary.run_file)[0], read_records(run.summary.run_file)[-1]
    assert start["carbon"]["zone"] == "DE"
    assert start["scope"] == "host"
    assert start["sample_interval_s"] == pytest.approx(0.05)
    assert end["items"] == 1234
    assert run.summary.items == 1234


def test_carbon_factor_and_intensity_series(tmp_path: Path) -> None:
    with carina.Run("factor", tmp_path, carbon_factor=100.0, constant_watts=10.0) as run:
        pass
    assert read_records(run.summary.run_file)[0]["carbon"]["g_per_kwh"] == pytest.approx(100.0)

    csv = tmp_path / "intensity.csv"
    csv.write_text("timestamp,g_per_kwh\n2020-01-01T00:00:00Z,50\n2040-01-01T00:00:00Z,50\n")
    with carina.Run("series", tmp_path, carbon_intensity_csv=csv, constant_watts=10.0) as run:
        pass
    carbon = read_records(run.summary.run_file)[0]["carbon"]
    assert carbon["series"] == str(csv)
    assert carbon["g_per_kwh"] == pytest.approx(50.0)


def test_no_run_file(tmp_path: Path) -> None:
    with carina.Run("nofile", tmp_path, run_file=False, constant_watts=10.0) as run:
        with carina.step("x"):
            pass
    assert run.run_file is None and run.summary.run_file is None
    assert run.summary.steps == 1
    assert run_files(tmp_path) == []


def test_best_effort_runs_without_a_file_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with carina.Run("be", blocker, best_effort=True, constant_watts=10.0) as run:
        with carina.step("x"):
            pass
    assert run.summary.run_file is None
    assert any("best effort" in w for w in run.summary.warnings)
    assert run.summary.steps == 1


def test_repr_and_state(tmp_path: Path) -> None:
    run = carina.Run("state", tmp_path, constant_watts=10.0)
    assert "not started" in repr(run)
    assert run.run_id is None and run.run_file is None and run.job == "state"
    assert not run.is_recording
    with pytest.raises(RuntimeError, match="not started"):
        run.finish()
    run.start()
    assert "running" in repr(run) and run.run_id in repr(run)
    run.finish()
    assert "finished" in repr(run)
    assert not run.is_recording


def test_the_hook_is_called_at_every_step_exit(tmp_path: Path) -> None:
    calls: list[bool] = []

    def sync() -> None:
        # The step is still open while the hook runs: its end time is read after.
        calls.append(carina.is_recording())

    with carina.Run("hook", tmp_path, on_step_exit=sync, constant_watts=10.0) as run:
        for _ in range(5):
            with carina.step("a"):
                pass

        @carina.step
        def f() -> int:
            return 1

        f()
    assert calls == [True] * 6
    assert run.summary.steps == 6


def test_the_hook_runs_before_the_step_end_time_is_read(tmp_path: Path) -> None:
    import time

    def slow_sync() -> None:
        time.sleep(0.05)

    with carina.Run("hook-time", tmp_path, on_step_exit=slow_sync, constant_watts=10.0) as run:
        with carina.step("kernel"):
            pass
    (rec,) = steps_named(read_records(run.summary.run_file), "kernel")
    assert rec["end_s"] - rec["start_s"] >= 0.045


def test_an_exception_in_the_hook_is_a_warning_and_the_step_is_recorded(tmp_path: Path) -> None:
    def broken() -> None:
        raise ValueError("no device")

    with carina.Run("hook-err", tmp_path, on_step_exit=broken, constant_watts=10.0) as run:
        with pytest.warns(RuntimeWarning, match="on_step_exit hook raised ValueError: no device"):
            with carina.step("a"):
                pass
    assert run.summary.steps == 1


def test_a_keyboard_interrupt_in_the_hook_is_raised_by_the_step_exit(tmp_path: Path) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with carina.Run("hook-kbi", tmp_path, on_step_exit=interrupted, constant_watts=10.0) as run:
        with pytest.raises(KeyboardInterrupt):
            with carina.step("a"):
                pass

        @carina.step("f")
        def f() -> None:
            pass

        with pytest.raises(KeyboardInterrupt):
            f()
    records = read_records(run.summary.run_file)
    assert [r["status"] for r in of_type(records, "step")] == ["ok", "ok"]


def test_the_hook_is_removed_when_the_run_finishes(tmp_path: Path) -> None:
    calls = []
    with carina.Run("hook-off", tmp_path, on_step_exit=lambda: calls.append(1),
                    constant_watts=10.0):
        with carina.step("a"):
            pass
    with carina.Run("no-hook", tmp_path, constant_watts=10.0):
        with carina.step("b"):
            pass
    assert calls == [1]


def test_disabled_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINA_DISABLE", "1")
    with carina.Run("off", tmp_path, constant_watts=10.0) as run:
        assert not run.is_recording
        assert not carina.is_recording()
        with carina.step("x"):
            pass
    assert run.summary.disabled
    assert run.summary.steps == 0 and run.summary.run_file is None
    assert "not recorded" in str(run.summary)
    assert run_files(tmp_path) == []


def test_carina_dir_is_the_default_output_directory(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINA_DIR", str(tmp_path / "from-env"))
    with carina.Run("envdir", constant_watts=10.0) as run:
        pass
    assert Path(run.summary.run_file).parent == tmp_path / "from-env" / "envdir"


def test_run_id_and_job_from_the_environment(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARINA_RUN_ID", "fixed-id")
    monkeypatch.setenv("CARINA_JOB", "env-job")
    with carina.Run("ignored", tmp_path, constant_watts=10.0) as run:
        pass
    assert run.job == "env-job" and run.run_id == "fixed-id"
    assert Path(run.summary.run_file) == tmp_path / "env-job" / "fixed-id.jsonl"
    # A run file is never overwritten: the same explicit id again is refused.
    with pytest.raises(FileExistsError, match="fixed-id"):
        carina.Run("ignored", tmp_path, constant_watts=10.0).start()
    assert not carina.is_recording()


def test_json_of_every_record_is_one_line(tmp_path: Path) -> None:
    with carina.Run("lines", tmp_path, constant_watts=10.0) as run:
        with carina.step("naïve \"quoted\" name"):
            pass
    raw = Path(run.summary.run_file).read_text(encoding="utf-8")
    lines = raw.splitlines()
    assert all(json.loads(line) for line in lines)
    assert steps_named(read_records(run.summary.run_file), 'naïve "quoted" name')


def test_the_records_have_the_fields_of_a_rust_run(tmp_path: Path) -> None:
    # `carina run` writes its run file through the same Rust builder: a Python run with the
    # same energy sources (detection) has records with the same fields.
    carina_cli("run", "--dir", str(tmp_path / "rust"), "--job", "rust", "--", "true")
    (rust_file,) = sorted((tmp_path / "rust").rglob("*.jsonl"))
    rust = read_records(rust_file)
    with carina.Run("python", tmp_path / "py", sample_interval=0.01) as run:
        with carina.step("x"):
            spin(0.01)
    py = read_records(run.summary.run_file)
    assert set(py[0]) == set(rust[0])
    assert set(py[-1]) == set(rust[-1])
    assert [s["name"] for s in py[0]["energy_sources"]] == [
        s["name"] for s in rust[0]["energy_sources"]]
    assert of_type(py, "power") and of_type(rust, "power")
    assert set(of_type(py, "power")[0]) == set(of_type(rust, "power")[0])


def _pool_while_waiting(tmp_path: Path, **settings: object) -> tuple[float, float, dict]:
    """A step waits on the main thread while a thread that never marks a step burns the CPU
    (as NumPy's BLAS threads or PyTorch's intra-op pool do for the step that called them)."""
    import threading
    import time

    with carina.Run("pool", tmp_path, constant_watts=50.0, sample_interval=0.01,
                    **settings) as run:
        with carina.step("wait_for_pool"):
            pool = threading.Thread(target=spin, args=(0.3,))
            pool.start()
            while pool.is_alive():
                time.sleep(0.005)  # releases the interpreter, as a native call would
            pool.join()
    records = read_records(run.summary.run_file)
    end = records[-1]
    wait = summary_named(records, "wait_for_pool")["self_energy_j"]
    return wait / end["energy_j"], end["unattributed_j"] / end["energy_j"], end


def test_unmarked_threads_energy_goes_to_the_open_steps_by_default(tmp_path: Path) -> None:
    wait, unattributed, end = _pool_while_waiting(tmp_path)
    assert end["unmarked_threads"] == "open-steps"
    assert wait > 0.7, f"the pool's CPU energy belongs to the step it worked for: {wait}"
    assert unattributed < 0.3


def test_unmarked_threads_energy_can_stay_unattributed(tmp_path: Path) -> None:
    wait, unattributed, end = _pool_while_waiting(tmp_path, unmarked_threads="unattributed")
    assert end["unmarked_threads"] == "unattributed"
    assert wait < 0.1, wait
    assert unattributed > 0.8, unattributed


def test_unmarked_threads_rejects_other_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unmarked_threads"):
        carina.Run("bad", tmp_path, unmarked_threads="steps")
