from launchbay.domain.logs import excerpt


def test_repeated_lines_are_said_once_with_their_count():
    text = "api: starting\n" + "api: GET /healthz\n" * 20 + "api: still here\n"
    assert excerpt(text) == (
        "api: starting\napi: GET /healthz  (repeated 20 times)\napi: still here"
    )


def test_a_long_log_keeps_the_lines_from_just_before_the_first_error():
    lines = [f"line {i}" for i in range(100)]
    lines[60] = "ERROR: cannot connect to db:5432"
    kept = excerpt("\n".join(lines), lines=10).splitlines()
    assert kept[0] == "line 58" and kept[2].startswith("ERROR") and len(kept) == 10


def test_without_an_error_a_long_log_keeps_its_last_lines_and_a_short_one_stays_whole():
    assert excerpt("\n".join(str(i) for i in range(50)), lines=3) == "47\n48\n49"
    assert excerpt("one\ntwo\n") == "one\ntwo"
