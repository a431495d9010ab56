"""Steps from Python: nesting, decorators, threads, items, status, misuse."""

from __future__ import annotations

import gc
import os
import pickle
import signal
import threading
import warnings
from pathlib import Path

import pytest

import carina
from helpers import carina_cli, of_type, read_records, spin, steps_named, summary_named


@carina.step
def module_level(x: int) -> int:
    """Doubles x."""
    return 2 * x


class Trainer:
    def __init__(self) -> None:
        self.seen: list[int] = []

    @carina.step("trainer.fit", items=lambda self, batch: len(batch))
    def fit(self, batch: list[int]) -> int:
        self.seen.extend(batch)
        return len(self.seen)


def test_nesting_across_functions(run_in) -> None:
    run = run_in()

    @carina.step("inner")
    def inner() -> None:
        spin(0.005)

    @carina.step("outer")
    def outer() -> None:
        inner()
        with carina.step("block"):
            inner()

    outer()
    records = read_records(run.finish().run_file)
    (o,) = steps_named(records, "outer")
    (b,) = steps_named(records, "block")
    inners = steps_named(records, "inner")
    assert o["parent"] is None
    assert b["parent"] == o["id"]
    assert sorted(i["parent"] for i in inners) == sorted([o["id"], b["id"]])
    assert o["energy_j"] >= b["energy_j"] + min(i["energy_j"] for i in inners) * 0.99
    assert o["self_energy_j"] < o["energy_j"]
    carina_cli("summary", run.summary.run_file)


def test_decorator_forms_and_default_names(run_in) -> None:
    run = run_in()
    assert module_level(4) == 8
    assert module_level.__name__ == "module_level"
    assert module_level.__doc__ == "Doubles x."
    assert module_level.__wrapped__(1) == 2

    @carina.step()
    def empty_parens() -> str:
        return "ok"

    assert empty_parens() == "ok"
    t = Trainer()
    assert t.fit([1, 2, 3]) == 3
    assert Trainer.fit(t, [4]) == 4

    @carina.gpu_step
    def bare_gpu() -> None:
        pass

    bare_gpu()
    records = read_records(run.finish().run_file)
    assert steps_named(records, "test_steps.module_level")
    assert steps_named(records, "test_steps.test_decorator_forms_and_default_names.<locals>.empty_parens")
    fits = steps_named(records, "trainer.fit")
    assert [f["items"] for f in fits] == [3, 1]
    (g,) = steps_named(records, "test_steps.test_decorator_forms_and_default_names.<locals>.bare_gpu")
    assert g["gpu"] is True


def test_decorated_functions_keep_signature_and_pickle() -> None:
    import inspect

    assert list(inspect.signature(module_level).parameters) == ["x"]
    assert pickle.loads(pickle.dumps(module_level)) is module_level
    assert "module_level" in repr(module_level)


def test_items_and_errors(run_in) -> None:
    run = run_in()
    with carina.step("counted", items=2) as s:
        s.add_items(3)
        assert s.items == 5 and s.is_recording
    with carina.step("set") as s:
        s.set_items(7)
    with carina.step("marked") as s:
        s.mark_error()
    with pytest.raises(ValueError, match="boom"):
        with carina.step("raised"):
            raise ValueError("boom")

    @carina.step("fails")
    def fails() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        fails()
    records = read_records(run.finish().run_file)
    assert steps_named(records, "counted")[0]["items"] == 5
    assert steps_named(records, "set")[0]["items"] == 7
    assert steps_named(records, "marked")[0]["status"] == "error"
    assert steps_named(records, "raised")[0]["status"] == "error"
    assert steps_named(records, "fails")[0]["status"] == "error"
    assert summary_named(records, "raised")["errors"] == 1


def test_keyboard_interrupt_inside_a_step_is_recorded_and_propagates(run_in) -> None:
    run = run_in()
    with pytest.raises(KeyboardInterrupt):
        with carina.step("raised-kbi"):
            raise KeyboardInterrupt
    # A real SIGINT, delivered by Python's handler between two bytecodes inside the step.
    with pytest.raises(KeyboardInterrupt):
        with carina.step("signalled"):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000_000):
                pass
    with pytest.raises(SystemExit):
        with carina.step("exited"):
            raise SystemExit(3)
    records = read_records(run.finish().run_file)
    for name in ("raised-kbi", "signalled", "exited"):
        assert steps_named(records, name)[0]["status"] == "error", name


def test_gpu_steps_are_marked(run_in) -> None:
    run = run_in()
    with carina.step("cpu"):
        pass
    with carina.step("gpu-kw", gpu=True) as s:
        assert s.gpu
    with carina.gpu_step("gpu-fn", items=2):
        pass

    @carina.step("gpu-deco", gpu=True)
    def f() -> None:
        pass

    f()
    records = read_records(run.finish().run_file)
    assert "gpu" not in steps_named(records, "cpu")[0]
    for name in ("gpu-kw", "gpu-fn", "gpu-deco"):
        assert steps_named(records, name)[0]["gpu"] is True, name
        assert summary_named(records, name)["gpu"] is True
    assert [s.gpu for s in run.summary.steps_summary if s.name.startswith("gpu")] == [True] * 3


def test_each_thread_records_into_its_own_ring_with_its_own_nesting(run_in) -> None:
    run = run_in()
    barrier = threading.Barrier(3)

    def work(tag: str) -> None:
        barrier.wait()
        with carina.step(f"outer-{tag}"):
            for _ in range(5):
                with carina.step(f"inner-{tag}"):
                    spin(0.001)

    threads = [threading.Thread(target=work, args=(t,), name=f"w{t}") for t in "ab"]
    for t in threads:
        t.start()
    with carina.step("main"):
        barrier.wait()
        for t in threads:
            t.join()
    records = read_records(run.finish().run_file)
    names = {r["index"]: r["name"] for r in of_type(records, "thread")}
    for tag in "ab":
        (outer,) = steps_named(records, f"outer-{tag}")
        inners = steps_named(records, f"inner-{tag}")
        assert len(inners) == 5
        assert outer["parent"] is None, "steps on another thread do not nest in main's"
        assert {i["parent"] for i in inners} == {outer["id"]}
        assert {i["thread"] for i in inners} == {outer["thread"]}
        assert outer["thread"] in names, "each thread has its thread record"
    main = steps_named(records, "main")[0]
    assert main["thread"] not in {steps_named(records, f"outer-{t}")[0]["thread"] for t in "ab"}


def test_exact_counts_from_four_threads(run_in) -> None:
    per_thread = 100_000
    run = run_in(steps="summary")

    @carina.step("deco-count")
    def tick() -> None:
        pass

    def work() -> None:
        for i in range(per_thread):
            with carina.step("with-count", items=1):
                pass
            tick()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary = run.finish()
    records = read_records(summary.run_file)
    assert summary_named(records, "with-count")["count"] == 4 * per_thread
    assert summary_named(records, "with-count")["items"] == 4 * per_thread
    assert summary_named(records, "deco-count")["count"] == 4 * per_thread
    assert summary.steps == 8 * per_thread
    assert summary.dropped == 0


def test_out_of_order_exit_closes_the_newer_step_first(run_in) -> None:
    run = run_in()
    outer = carina.step("outer").__enter__()
    inner = carina.step("inner").__enter__()
    with pytest.warns(RuntimeWarning, match='"inner" opened after it'):
        outer.__exit__(None, None, None)
    # Its own exit later finds it closed: nothing more is recorded, nothing is said.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inner.__exit__(None, None, None)
    with carina.step("after"):
        pass
    records = read_records(run.finish().run_file)
    (o,) = steps_named(records, "outer")
    (i,) = steps_named(records, "inner")
    (a,) = steps_named(records, "after")
    assert i["parent"] == o["id"] and i["status"] == "error" and o["status"] == "ok"
    assert a["parent"] is None, "the pairing is intact after the misuse"


def test_exit_on_another_thread_records_nothing_there(run_in) -> None:
    run = run_in()
    s = carina.step("crossed").__enter__()
    caught: list[warnings.WarningMessage] = []

    def other() -> None:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with carina.step("other-thread"):
                pass
            s.__exit__(None, None, None)
            caught.extend(w)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert any("another thread" in str(w.message) for w in caught)
    # Still open on this thread: a step opened now nests in it.
    with carina.step("nested"):
        pass
    records = read_records(run.finish().run_file)
    (c,) = steps_named(records, "crossed")
    (n,) = steps_named(records, "nested")
    (o,) = steps_named(records, "other-thread")
    assert c.get("unfinished") is True
    assert n["parent"] == c["id"]
    assert o["parent"] is None


def test_a_step_never_exited_is_written_unfinished(run_in) -> None:
    run = run_in()
    carina.step("left-open").__enter__()
    gc.collect()
    records = read_records(run.finish().run_file)
    (s,) = steps_named(records, "left-open")
    assert s["unfinished"] is True
    carina_cli("summary", run.summary.run_file)


def test_step_objects_are_reused_only_when_nobody_holds_them(run_in) -> None:
    run_in()
    first = carina.step("pooled")
    first_id = id(first)
    second = carina.step("pooled")
    assert second is not first, "a step held by the caller is never handed out again"
    with first:
        first.add_items(4)
    assert first.items == 4
    del first, second
    third = carina.step("pooled", items=2)
    assert id(third) == first_id, "an unreachable step object is reused"
    assert third.items == 2 and not third.is_recording


def test_entering_an_open_step_again_is_refused(run_in) -> None:
    run_in()
    s = carina.step("once")
    with s:
        with pytest.raises(RuntimeError, match="already open"):
            s.__enter__()
    with s:
        pass


def test_steps_record_nothing_without_a_run() -> None:
    assert not carina.is_recording()
    with carina.step("idle") as s:
        assert not s.is_recording
        s.add_items(3)
    assert s.items == 3
    assert module_level(1) == 2


def test_whether_a_step_records_is_decided_when_it_is_entered(tmp_path: Path) -> None:
    made_before = carina.step("early")
    with carina.Run("late", tmp_path, constant_watts=10.0) as run:
        with made_before:
            pass
    assert steps_named(read_records(run.summary.run_file), "early")


def test_names_are_interned_once(run_in) -> None:
    from carina import _native

    run_in()
    for i in range(3):
        with carina.step("interned-" + str(i % 2)):  # built anew each time
            pass
    before = _native._distinct_names()
    for i in range(100):
        with carina.step("interned-" + str(i % 2)):
            pass
    assert _native._distinct_names() == before
