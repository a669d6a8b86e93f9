"""SQLite's writers take turns in the process; a write someone waits on goes first."""

from __future__ import annotations

import threading

from launchbay.store.db import Turns
from tests.support import wait_until


def test_an_urgent_writer_waiting_goes_before_background_writers_waiting_longer():
    turns = Turns()
    order: list[str] = []
    release = threading.Event()

    def holder() -> None:
        with turns.turn(urgent=False):
            release.wait(10)

    def writer(name: str, *, urgent: bool) -> None:
        with turns.turn(urgent=urgent):
            order.append(name)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    wait_until(lambda: turns._owner is not None, timeout=5, what="the first writer's turn")
    for name, urgent in (("background-1", False), ("background-2", False), ("webhook", True)):
        thread = threading.Thread(target=writer, args=(name,), kwargs={"urgent": urgent})
        thread.start()
        threads.append(thread)
    wait_until(lambda: turns._urgent_waiting == 1, timeout=5, what="the urgent writer waiting")
    release.set()
    for thread in threads:
        thread.join(10)
    assert order[0] == "webhook" and sorted(order[1:]) == ["background-1", "background-2"]


def test_a_writer_may_take_its_turn_again_inside_its_turn():
    turns = Turns()
    with turns.turn(urgent=False), turns.turn(urgent=True):
        assert turns._depth == 2
    assert turns._owner is None
