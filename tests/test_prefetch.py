"""The read-ahead thread: same items in order, the producer's error reaches the consumer, no hang."""

from __future__ import annotations

import threading

import pytest

from pingan.ingest.prefetch import prefetch


def test_items_arrive_in_order():
    assert list(prefetch(iter(range(100)), depth=2)) == list(range(100))


def test_a_producer_error_is_raised_in_the_consumer():
    def items():
        yield 1
        raise ValueError("bad block at line 7")

    got = []
    with pytest.raises(ValueError, match="line 7"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1]


def test_an_abandoned_consumer_does_not_leave_the_thread_blocked():
    def items():
        yield from range(10)
        raise RuntimeError("after the consumer left")

    it = prefetch(items(), depth=1)
    assert next(it) == 0
    it.close()  # the consumer stops early with the queue full
    assert not [t for t in threading.enumerate() if t.name == "pingan-prefetch" and t.is_alive()]
