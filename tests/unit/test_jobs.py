from datetime import timedelta

from launchbay.domain.jobs import BACKOFF_CAP, JobState, backoff


def test_backoff_doubles_from_one_second_and_is_capped_at_a_minute():
    assert [backoff(n).total_seconds() for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(50) == BACKOFF_CAP


def test_backoff_waits_at_least_what_the_error_asked_for():
    assert backoff(1, asked=5.0) == timedelta(seconds=5)
    assert backoff(5, asked=5.0) == timedelta(seconds=16)
    assert backoff(1, asked=3600) == BACKOFF_CAP


def test_only_done_and_failed_are_finished():
    assert {s for s in JobState if s.finished} == {JobState.DONE, JobState.FAILED}
