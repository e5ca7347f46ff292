"""Run an iterator one step ahead in a background thread, so reading overlaps processing.

Decoding a source holds the GIL, but pyarrow's compute kernels and Parquet writer release it: on two
cores the next block is read while the current one is normalised and written. The queue is bounded,
so at most `depth` chunks wait in memory. An exception in the producer is raised in the consumer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(message: tuple) -> bool:
        """Put unless the consumer has gone; never block forever on a full queue."""
        while not stop.is_set():
            try:
                q.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over(("item", item)):
                    return
            hand_over(("done", _DONE))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            hand_over(("error", exc))

    thread = threading.Thread(target=produce, name="pingan-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)
