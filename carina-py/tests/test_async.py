"""Coroutine and generator steps: one segment per resumption, as Rust async steps."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import carina
from helpers import carina_cli, read_records, spin, steps_named, summary_named


def test_gathered_coroutines_are_one_step_each_and_do_not_nest(run_in) -> None:
    run = run_in()

    @carina.step("fetch", items=lambda i: i)
    async def fetch(i: int) -> int:
        for _ in range(3):
            await asyncio.sleep(0.01)
        return i * 10

    async def main() -> list[int]:
        with carina.step("main"):
            return await asyncio.gather(*(fetch(i) for i in range(20)))

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(main()) == [i * 10 for i in range(20)]
    records = read_records(run.finish().run_file)
    fetches = steps_named(records, "fetch")
    (m,) = steps_named(records, "main")
    assert len(fetches) == 20
    assert sorted(f["items"] for f in fetches) == list(range(20))
    ids = {f["id"] for f in fetches}
    for f in fetches:
        assert f["async"] is True and f["status"] == "ok"
        assert f["parent"] not in ids, "a coroutine never nests in another one"
        # Each spans its three sleeps, from first resumption to completion.
        assert f["end_s"] - f["start_s"] >= 0.025
    # The event loop ran inside `main`, so the coroutines' first resumptions did.
    assert {f["parent"] for f in fetches} == {m["id"]}
    assert summary_named(records, "fetch")["count"] == 20
    carina_cli("summary", run.summary.run_file)


def test_a_coroutine_counts_only_while_it_runs(run_in) -> None:
    run = run_in(sample_interval=0.01)

    @carina.step("waits")
    async def waits() -> None:
        await asyncio.sleep(0.3)

    @carina.step("busy")
    async def busy() -> None:
        await asyncio.sleep(0)
        spin(0.3)  # blocks the loop: `waits` is suspended meanwhile

    async def main() -> None:
        await asyncio.gather(waits(), busy())

    asyncio.run(main())
    records = read_records(run.finish().run_file)
    (w,) = steps_named(records, "waits")
    (b,) = steps_named(records, "busy")
    assert w["end_s"] - w["start_s"] >= 0.29, "its span covers the wait"
    assert b["energy_j"] > 0
    # Open over the same 0.3 s, but suspended: a sync step would have shared `busy`'s energy.
    assert w["energy_j"] < 0.05 * b["energy_j"]


def test_with_blocks_inside_a_coroutine_may_span_awaits(run_in) -> None:
    run = run_in()

    @carina.step("task")
    async def task(i: int) -> None:
        with carina.step("phase") as s:
            await asyncio.sleep(0.01)
            s.add_items(i)
            await asyncio.sleep(0.01)
        with carina.step("after"):
            pass

    async def main() -> None:
        await asyncio.gather(*(task(i) for i in range(5)))
        with carina.step("loop-after"):
            pass

    with carina.step("outside"):
        asyncio.run(main())
    with carina.step("next"):
        pass
    records = read_records(run.finish().run_file)
    tasks = {t["id"]: t for t in steps_named(records, "task")}
    phases = steps_named(records, "phase")
    assert len(tasks) == 5 and len(phases) == 5
    assert sorted(p["items"] for p in phases) == list(range(5))
    for p in phases:
        assert p["parent"] in tasks, "a child step nests in its coroutine's step"
        assert p["end_s"] - p["start_s"] >= 0.015
        assert p["status"] == "ok"
    assert {a["parent"] for a in steps_named(records, "after")} <= set(tasks)
    (outside,) = steps_named(records, "outside")
    (nxt,) = steps_named(records, "next")
    assert steps_named(records, "loop-after")[0]["parent"] == outside["id"]
    assert nxt["parent"] is None, "the thread's stack is balanced afterwards"


def test_cancelled_and_failing_coroutines(run_in) -> None:
    run = run_in()

    @carina.step("sleeper")
    async def sleeper() -> None:
        await asyncio.sleep(10)

    @carina.step("failer")
    async def failer() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad")

    async def main() -> None:
        t = asyncio.create_task(sleeper())
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        with pytest.raises(ValueError):
            await failer()

    asyncio.run(main())
    records = read_records(run.finish().run_file)
    (s,) = steps_named(records, "sleeper")
    (f,) = steps_named(records, "failer")
    assert s["status"] == "error" and s["cancelled"] is True
    assert f["status"] == "error" and "cancelled" not in f


def test_a_coroutine_never_awaited_records_nothing(run_in) -> None:
    run = run_in()

    @carina.step("never")
    async def never() -> None:
        pass

    coro = never()
    coro.close()
    records = read_records(run.finish().run_file)
    assert steps_named(records, "never") == []


def test_generators_are_one_step_per_call(run_in) -> None:
    run = run_in()

    @carina.step("gen", items=lambda n: n)
    def gen(n: int):
        for i in range(n):
            with carina.step("item"):
                pass
            yield i
        return "done"

    assert inspect.isgeneratorfunction(gen)
    with carina.step("consumer"):
        assert list(gen(3)) == [0, 1, 2]
        g = gen(5)
        assert next(g) == 0
        g.close()  # stopped early: cancelled
    records = read_records(run.finish().run_file)
    gens = steps_named(records, "gen")
    assert len(gens) == 2
    done = [g for g in gens if g["status"] == "ok"]
    stopped = [g for g in gens if g["status"] == "error"]
    assert len(done) == 1 and done[0]["items"] == 3
    assert len(stopped) == 1 and stopped[0]["cancelled"] is True
    items = steps_named(records, "item")
    assert len(items) == 4
    assert {i["parent"] for i in items} <= {g["id"] for g in gens}


def test_yield_from_a_decorated_generator_returns_its_value(run_in) -> None:
    run_in()

    @carina.step
    def inner():
        yield 1
        return 42

    def outer():
        value = yield from inner()
        yield value

    assert list(outer()) == [1, 42]


def test_async_generators_are_refused_with_a_clear_message() -> None:
    async def agen():
        yield 1

    with pytest.raises(TypeError, match="async generator"):
        carina.step(agen)
