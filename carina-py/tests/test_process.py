"""Runs across process boundaries: interpreter exit, fork, `carina run`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import (
    carina_cli,
    clean_env,
    of_type,
    read_records,
    run_files,
    run_script,
    steps_named,
    summary_named,
)


def test_a_run_never_finished_is_finished_at_interpreter_exit(tmp_path: Path) -> None:
    run_script(
        f"""
        import carina
        run = carina.Run("unfinished", {str(tmp_path)!r}, constant_watts=10.0).start()
        with carina.step("work", items=3):
            pass
        open_forever = carina.step("still-open").__enter__()
        # no finish(): the interpreter exits here
        """
    )
    (path,) = run_files(tmp_path)
    records = read_records(path)
    assert records[0]["type"] == "run_start"
    assert records[-1]["type"] == "run_end"
    assert steps_named(records, "work")[0]["items"] == 3
    assert steps_named(records, "still-open")[0]["unfinished"] is True
    out = carina_cli("summary", str(path)).stdout
    assert "work" in out and "INCOMPLETE" not in out


def test_a_run_that_is_dropped_keeps_running_until_exit(tmp_path: Path) -> None:
    run_script(
        f"""
        import gc, carina
        carina.Run("dropped", {str(tmp_path)!r}, constant_watts=10.0).start()
        gc.collect()
        assert carina.is_recording()
        with carina.step("after-drop"):
            pass
        """
    )
    (path,) = run_files(tmp_path)
    records = read_records(path)
    assert steps_named(records, "after-drop")
    assert records[-1]["type"] == "run_end"


def test_an_abrupt_exit_leaves_whole_lines_the_cli_reads(tmp_path: Path) -> None:
    run_script(
        f"""
        import os, time, carina
        carina.Run("abrupt", {str(tmp_path)!r}, constant_watts=10.0,
                   sample_interval=0.01).start()
        for _ in range(50):
            with carina.step("tick"):
                time.sleep(0.01)
        time.sleep(2.5)  # past a checkpoint (about one a second)
        os._exit(0)      # no atexit, no finish
        """
    )
    (path,) = run_files(tmp_path)
    records = read_records(path)  # every line whole JSON
    assert records[0]["type"] == "run_start"
    assert of_type(records, "run_end") == []
    assert len(steps_named(records, "tick")) == 50
    out = carina_cli("summary", str(path)).stdout
    assert "[INCOMPLETE]" in out


def test_a_child_forked_during_a_run_records_nothing_and_leaves_the_file_alone(
    tmp_path: Path,
) -> None:
    result = run_script(
        f"""
        import os, sys, json, warnings, carina
        with carina.Run("forked", {str(tmp_path)!r}, constant_watts=10.0) as run:
            with carina.step("before-fork"):
                pass
            with carina.step("parent-open"):
                pid = os.fork()
                if pid == 0:
                    # The child: nothing records, no run of its own, the parent's run untouched.
                    ok = not carina.is_recording()
                    with carina.step("in-child") as s:
                        ok = ok and not s.is_recording
                    try:
                        carina.Run("child-run", {str(tmp_path)!r}).start()
                        ok = False
                    except RuntimeError as e:
                        ok = ok and "forked" in str(e)
                    try:
                        run.finish()
                        ok = False
                    except RuntimeError:
                        pass
                    # Leaving the parent's with blocks here, and interpreter exit (atexit),
                    # must not finish the parent's run either.
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        sys.exit(0 if ok else 7)
                _, status = os.waitpid(pid, 0)
                print("child status", os.waitstatus_to_exitcode(status))
            with carina.step("after-fork"):
                pass
        print(json.dumps(run.summary.run_file))
        """
    )
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "child status 0", result.stdout + result.stderr
    path = json.loads(lines[-1])
    assert run_files(tmp_path) == [Path(path)], "the child wrote no file of its own"
    records = read_records(path)
    assert len(of_type(records, "run_start")) == 1
    assert len(of_type(records, "run_end")) == 1 and records[-1]["type"] == "run_end"
    assert steps_named(records, "in-child") == []
    for name in ("before-fork", "parent-open", "after-fork"):
        assert len(steps_named(records, name)) == 1, name
    carina_cli("summary", path)


def test_a_child_forked_with_no_run_can_start_its_own(tmp_path: Path) -> None:
    result = run_script(
        f"""
        import os, carina
        with carina.Run("parent", {str(tmp_path)!r}, constant_watts=10.0):
            pass
        pid = os.fork()
        if pid == 0:
            with carina.Run("child", {str(tmp_path)!r}, constant_watts=10.0):
                with carina.step("child-step"):
                    pass
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    assert result.stdout.strip() == "0"
    (child_file,) = run_files(tmp_path / "child")
    assert steps_named(read_records(child_file), "child-step")


def test_carina_run_merges_the_python_childs_steps(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import carina\n"
        "with carina.Run('ignored-name', constant_watts=10.0):\n"
        "    for i in range(3):\n"
        "        with carina.step('py-epoch', items=10):\n"
        "            sum(range(100000))\n"
    )
    runs = tmp_path / "runs"
    carina_cli("run", "--dir", str(runs), "--job", "merged", "--", sys.executable, str(script),
               env=clean_env())
    files = run_files(runs)
    assert len(files) == 1, f"the child's file was merged and removed: {files}"
    records = read_records(files[0])
    assert records[0]["job"] == "merged"
    epochs = steps_named(records, "py-epoch")
    assert len(epochs) == 3 and all(e["items"] == 10 for e in epochs)
    assert summary_named(records, "py-epoch")["count"] == 3
    assert records[-1]["type"] == "run_end"
    assert records[-1]["steps"] >= 3
    carina_cli("summary", str(files[0]))


def test_carina_run_merges_a_child_that_never_finished_its_run(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "import carina\n"
        "carina.Run('x', constant_watts=10.0).start()\n"
        "with carina.step('py-step'):\n"
        "    pass\n"
    )
    runs = tmp_path / "runs"
    carina_cli("run", "--dir", str(runs), "--job", "merged2", "--", sys.executable, str(script),
               env=clean_env())
    (path,) = run_files(runs)
    assert len(steps_named(read_records(path), "py-step")) == 1


def test_the_run_file_is_named_by_the_environment(tmp_path: Path) -> None:
    run_script(
        """
        import carina
        with carina.Run("job", constant_watts=10.0) as run:
            pass
        """,
        env=clean_env(CARINA_DIR=str(tmp_path / "d"), CARINA_RUN_ID="rid-7"),
    )
    assert run_files(tmp_path) == [tmp_path / "d" / "job" / "rid-7.jsonl"]
