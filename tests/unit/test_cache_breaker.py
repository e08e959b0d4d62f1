from __future__ import annotations

from functions.cache.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock) -> Breaker:
    return Breaker(base_seconds=1.0, max_seconds=8.0, clock=clock, jitter=lambda: 0.5)  # no jitter


def test_the_first_failure_opens_it_and_calls_are_skipped_until_the_backoff_passes() -> None:
    clock = Clock()
    b = _breaker(clock)
    assert b.allow()
    assert b.failure() is True  # opened: the caller logs once
    assert not b.allow()
    clock.now += 0.99
    assert not b.allow()
    clock.now += 0.02
    assert b.allow()  # the probe
    assert not b.allow()  # only one probe at a time
    assert b.success() is True  # closed: the caller logs recovery
    assert b.allow() and not b.is_open


def test_failed_probes_double_the_backoff_up_to_the_cap() -> None:
    clock = Clock()
    b = _breaker(clock)
    b.failure()
    waits = []
    for _ in range(5):
        start = clock.now
        while not b.allow():
            clock.now += 0.25
        waits.append(clock.now - start)
        assert b.failure() is False  # still open: no second log line
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_calls_in_flight_when_it_opened_do_not_push_the_probe_out() -> None:
    clock = Clock()
    b = _breaker(clock)
    b.failure()
    for _ in range(10):
        assert b.failure() is False  # stragglers
    clock.now += 1.01
    assert b.allow()


def test_a_success_resets_the_backoff() -> None:
    clock = Clock()
    b = _breaker(clock)
    b.failure()
    clock.now += 1.01
    assert b.allow()
    b.failure()  # probe failed: next wait 2 s
    clock.now += 2.01
    assert b.allow()
    b.success()
    b.failure()
    clock.now += 1.01
    assert b.allow()  # back to 1 s


def test_jitter_spreads_probes_between_80_and_120_percent() -> None:
    for jitter, allowed_after in ((0.0, 0.8), (1.0, 1.2)):
        clock = Clock()
        b = Breaker(base_seconds=1.0, clock=clock, jitter=lambda j=jitter: j)
        b.failure()
        clock.now += allowed_after - 0.01
        assert not b.allow()
        clock.now += 0.02
        assert b.allow()


def test_a_success_that_was_in_flight_when_it_opened_does_not_close_it() -> None:
    clock = Clock()
    b = _breaker(clock)
    b.failure()
    assert b.success() is False and b.is_open
    clock.now += 1.01
    assert b.allow()
    assert b.success() is True and not b.is_open
