"""Type stubs of ``carina._native``, the Rust half of the package (import ``carina`` instead)."""

from typing import Any, Callable, Optional, Union

from carina import (
    Governor as Governor,
    Permit as Permit,
    Run as Run,
    RunSummary as RunSummary,
    Step as Step,
    StepSummary as StepSummary,
    __version__ as __version__,
    gpu_step as gpu_step,
    is_recording as is_recording,
    step as step,
)

class Site:
    """A decorated function's interned step name and GPU flag."""

    def __init__(self, name: str, gpu: bool) -> None: ...
    def task(self, items: Optional[int] = None) -> Task: ...
    @property
    def name(self) -> str: ...
    @property
    def gpu(self) -> bool: ...

class Task:
    """One call of a decorated coroutine or generator function."""

    def resume(self) -> None: ...
    def suspend(self, outcome: int) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def started(self) -> bool: ...
    @property
    def finished(self) -> bool: ...

class StepFunction:
    """A plain function decorated with ``@carina.step``."""

    def __init__(
        self,
        func: Callable[..., Any],
        site: Site,
        items: Union[None, int, Callable[..., int]] = None,
    ) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    @property
    def step_name(self) -> str: ...

def _after_fork_in_child() -> None: ...
def _finish_at_exit() -> None: ...
def _distinct_names() -> int: ...
