"""How ``@carina.step`` wraps a function, a coroutine function or a generator function.

A plain function is one step per call, entered and exited around the call by
``carina._native.StepFunction``.

A coroutine (``async def``) or a generator is one step per call too, but it runs in pieces: it
is resumed (``send``, ``throw``, ``close``), runs until it awaits or yields, and is suspended.
As in Rust, where ``#[carina::step]`` on an ``async fn`` records each poll, every resumption
is one *segment* of the step: its time and energy count only while it runs, not while it
waits, so many coroutines interleaved by ``asyncio.gather`` do not nest in each other. The run
file has one ``step`` record per call, marked ``"async": true``, from the first resumption to
the last. A coroutine cancelled (``CancelledError``) or closed before it finished is recorded
with status ``error`` and ``"cancelled": true``; one that raised, with status ``error``.
"""

from __future__ import annotations

import functools
import inspect
import operator
import sys
from typing import Any, Callable, Generator, Optional, Union

from carina._native import Site, StepFunction, Task

# How a resumption ended, as carina._native.Task.suspend takes it.
_SUSPENDED = 0
_RETURNED = 1
_RAISED = 2
_CANCELLED = 3


def _outcome(exc: BaseException) -> int:
    if isinstance(exc, GeneratorExit):
        return _CANCELLED
    # asyncio is not imported here: if the program has not imported it, the exception cannot
    # be asyncio's CancelledError.
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(exc, asyncio.CancelledError):
        return _CANCELLED
    return _RAISED


class _Resumptions:
    """Drives a coroutine or generator, recording each resumption as a segment of one step.

    It is what the wrapper awaits (``await``) or delegates to (``yield from``): both forward
    ``send``, ``throw`` and ``close`` here unchanged.
    """

    __slots__ = ("_it", "_task")

    def __init__(self, it: Any, task: Task) -> None:
        self._it = it
        self._task = task

    def __iter__(self) -> "_Resumptions":
        return self

    def __await__(self) -> "_Resumptions":
        return self

    def __next__(self) -> Any:
        return self._drive(self._it.send, None)

    def send(self, value: Any) -> Any:
        return self._drive(self._it.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        # Called with an exception instance, or the old (type, value, traceback) triple.
        if val is None:
            exc = typ
        else:
            exc = val if isinstance(val, BaseException) else typ(val)
            if tb is not None:
                exc = exc.with_traceback(tb)
        return self._drive(self._it.throw, exc)

    def close(self) -> None:
        task = self._task
        if task.finished or not task.started:
            # Never resumed under a run (nothing recorded, as for a Rust future never polled),
            # or finished: closing runs no code of the step.
            self._it.close()
            return
        task.resume()
        try:
            self._it.close()
        except BaseException as exc:
            task.suspend(_outcome(exc))
            raise
        task.suspend(_CANCELLED)

    def _drive(self, resume: Callable[[Any], Any], arg: Any) -> Any:
        task = self._task
        task.resume()
        try:
            out = resume(arg)
        except StopIteration:
            task.suspend(_RETURNED)
            raise
        except BaseException as exc:
            task.suspend(_outcome(exc))
            raise
        task.suspend(_SUSPENDED)
        return out


def _default_name(func: Any) -> str:
    module = getattr(func, "__module__", None) or "__main__"
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{qualname}"


def decorate(
    func: Callable[..., Any],
    name: Optional[str],
    items: Union[None, int, Callable[..., int]],
    gpu: bool,
) -> Callable[..., Any]:
    """Returns ``func`` recorded as a step named ``name`` (default ``module.qualname``).

    ``items`` is an int, or a callable taking the function's arguments and returning the
    call's items; it is evaluated before the body runs (an exception it raises propagates and
    the function is not called).
    """
    if name is None:
        name = _default_name(func)
    if not isinstance(name, str):
        raise TypeError(f"a step name must be a str, got {type(name).__name__}")
    if inspect.isasyncgenfunction(func):
        raise TypeError(
            f"carina.step cannot decorate the async generator function {name!r} yet; mark a "
            "step inside it with `with carina.step(...)` instead"
        )
    site = Site(name, gpu)
    count: Callable[..., int]
    if items is None:
        count = _no_items
    elif callable(items):
        count = items
    else:
        fixed = operator.index(items)
        if fixed < 0:
            raise ValueError(f"items must be a non-negative integer, got {items!r}")

        def count(*_args: Any, **_kwargs: Any) -> int:
            return fixed

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def coroutine_step(*args: Any, **kwargs: Any) -> Any:
            task = site.task(count(*args, **kwargs))
            return await _Resumptions(func(*args, **kwargs), task)

        return coroutine_step

    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def generator_step(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            task = site.task(count(*args, **kwargs))
            return (yield from _Resumptions(func(*args, **kwargs), task))

        return generator_step

    # A plain function: the call is entered and exited in Rust (no Step object per call).
    wrapper = StepFunction(func, site, items)
    functools.update_wrapper(wrapper, func)
    return wrapper


def _no_items(*_args: Any, **_kwargs: Any) -> int:
    return 0
