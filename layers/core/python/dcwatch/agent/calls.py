"""One call at a time with a deadline: how the agent waits on AWS and its peer without a slow answer delaying
its round."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    pass


class BoundedCall(Generic[T]):
    """One call at a time in a daemon thread, awaited no longer than its deadline; a call that outlives
    it is left to end by its own socket timeouts, and the next one waits until it has. What such a call
    returns after its waiter gave up is kept for `late()`: a slow answer is still an answer."""

    def __init__(self, name: str):
        self.name = name
        self._done = threading.Event()
        self._done.set()
        self._result: tuple[T | None, BaseException | None] = (None, None)
        self._claimed = True

    def start(self, work: Callable[[], T]) -> bool:
        if not self._done.is_set():
            return False
        self._done.clear()
        self._claimed = False

        def run() -> None:
            try:
                self._result = (work(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                self._result = (None, exc)
            finally:
                self._done.set()

        threading.Thread(target=run, name=f"dcwatch-agent-{self.name}", daemon=True).start()
        return True

    def wait(self, timeout_s: float) -> T:
        if not self._done.wait(max(0.0, timeout_s)):
            raise DeadlineExceeded(f"{self.name}: no answer within the deadline")
        self._claimed = True
        value, error = self._result
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    def late(self) -> T | None:
        """The value of a call that succeeded after its deadline, once; None otherwise."""
        if self._claimed or not self._done.is_set():
            return None
        self._claimed = True
        value, error = self._result
        return value if error is None else None

    def __call__(self, work: Callable[[], T], timeout_s: float) -> T:
        if not self.start(work):
            raise DeadlineExceeded(f"{self.name}: the previous call has not ended yet")
        return self.wait(timeout_s)
