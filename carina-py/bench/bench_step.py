"""What a Carina step costs from Python, next to its baselines, measured in one process.

    python3 carina-py/bench/bench_step.py            # the figures of benches/README.md
    python3 carina-py/bench/bench_step.py --quick    # short timing loops (CI: asserts the counts)

Every figure is the best of several rounds of a loop timed with ``time.perf_counter_ns``,
divided by the loop's length; the baselines run in the same rounds, interleaved with the thing
measured, so a busy neighbour slows both alike. Wall-clock figures on a shared VM move by ~30 %
between runs; the ratios, taken within one run, are what the goals are stated in:

- ``with carina.step("x")`` with a run installed: at most 2x an empty pure-Python context manager;
- ``@carina.step`` on a function: at most 2x (an undecorated call + the empty context manager);
- with no run installed: at most 1.2x the empty context manager;
- CodeCarbon's task API (``start_task``/``stop_task``), when it is installed, for scale;
- 10 million steps from 4 threads: the run file's count is exact (asserted, not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import carina


class Empty:
    """The baseline: the cheapest context manager pure Python can write."""

    def __enter__(self) -> "Empty":
        return self

    def __exit__(self, *exc: object) -> bool:
        return False


def work() -> None:
    pass


def loop_empty_cm(n: int) -> None:
    for _ in range(n):
        with Empty():
            pass


def loop_carina_step(n: int) -> None:
    step = carina.step
    for _ in range(n):
        with step("x"):
            pass


def loop_plain_call(n: int) -> None:
    f = work
    for _ in range(n):
        f()


def loop_call_in_empty_cm(n: int) -> None:
    f = work
    for _ in range(n):
        with Empty():
            f()


decorated = carina.step("decorated")(work)


def loop_decorated_call(n: int) -> None:
    f = decorated
    for _ in range(n):
        f()


def loop_nothing(n: int) -> None:
    for _ in range(n):
        pass


def best_ns(fns: dict[str, Callable[[int], None]], n: int, rounds: int) -> dict[str, float]:
    """Best per-iteration time of each loop, the loops interleaved round by round."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter_ns()
            fn(n)
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / n)
    return best


def codecarbon_task_ns(tasks: int, out: Path) -> tuple[float, float] | None:
    """Start-up and per-task cost of CodeCarbon's task API, or None when it is not installed."""
    try:
        import logging

        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        return None
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    t0 = time.perf_counter_ns()
    tracker = OfflineEmissionsTracker(
        country_iso_code="DEU", output_dir=str(out), save_to_file=False, log_level="error"
    )
    tracker.start()
    startup = time.perf_counter_ns() - t0
    t0 = time.perf_counter_ns()
    for i in range(tasks):
        tracker.start_task(f"x{i}")
        tracker.stop_task()
    per_task = (time.perf_counter_ns() - t0) / tasks
    tracker.stop()
    return startup, per_task


def exact_counts(out: Path, threads: int, per_thread: int) -> tuple[int, float]:
    """Steps from several threads at once; returns the count in the run file and the seconds."""
    barrier = threading.Barrier(threads)

    def worker() -> None:
        step = carina.step
        barrier.wait()
        for _ in range(per_thread):
            with step("hot"):
                pass

    with carina.Run("bench-exact", output_dir=out, steps="summary") as run:
        t0 = time.perf_counter()
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        seconds = time.perf_counter() - t0
    count = 0
    with open(run.summary.run_file, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("type") == "step_summary" and record.get("name") == "hot":
                count += record["count"]
    return count, seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small loops; checks counts only")
    args = parser.parse_args(argv)
    n, rounds = (20_000, 3) if args.quick else (1_000_000, 7)
    # The exact-count check runs at full size in both modes: it is what CI asserts.
    threads, per_thread = 4, 2_500_000

    print(f"python {sys.version.split()[0]}, carina {carina.__version__}, "
          f"{os.cpu_count()} CPUs, loops of {n:,}, best of {rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        off = best_ns({"empty cm": loop_empty_cm, "carina.step, no run": loop_carina_step,
                       "loop": loop_nothing}, n, rounds)
        with carina.Run("bench", output_dir=out, steps="summary"):
            on = best_ns({"empty cm": loop_empty_cm, "carina.step": loop_carina_step,
                          "plain call": loop_plain_call, "call in empty cm": loop_call_in_empty_cm,
                          "@carina.step call": loop_decorated_call, "loop": loop_nothing},
                         n, rounds)
        cc = codecarbon_task_ns(50 if args.quick else 300, out)
        total = threads * per_thread
        count, seconds = exact_counts(out, threads, per_thread)

    rows = [
        ("empty pure-Python context manager (run installed)", on["empty cm"], None),
        ("with carina.step('x') (run installed)", on["carina.step"], on["carina.step"] / on["empty cm"]),
        ("plain call f()", on["plain call"], None),
        ("f() inside the empty context manager", on["call in empty cm"], None),
        ("@carina.step f() (run installed)", on["@carina.step call"],
         on["@carina.step call"] / on["call in empty cm"]),
        ("empty pure-Python context manager (no run)", off["empty cm"], None),
        ("with carina.step('x') (no run)", off["carina.step, no run"],
         off["carina.step, no run"] / off["empty cm"]),
        ("empty for loop (subtracted from nothing)", off["loop"], None),
    ]
    print(f"{'what':55} {'ns/iter':>9} {'ratio':>7}")
    for what, ns, ratio in rows:
        print(f"{what:55} {ns:9.1f} {'' if ratio is None else f'{ratio:6.2f}x':>7}")
    print("goals: step <= 2x empty cm; decorator <= 2x (call + empty cm); no run <= 1.2x empty cm")
    if cc is None:
        print("codecarbon: not installed (pip install codecarbon to time its task API)")
    else:
        startup, per_task = cc
        print(f"codecarbon task API: start {startup / 1e9:.2f} s, {per_task / 1e3:,.0f} us per "
              f"start_task/stop_task = {per_task / on['carina.step']:,.0f}x carina.step")
    print(f"exact counts: {count:,} of {total:,} steps from {threads} threads in {seconds:.1f} s "
          f"({seconds / total * 1e9:.0f} ns per step, GIL included)")
    if count != total:
        print("FAILED: the run file's count is not exact", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
