"""The end-of-run check finds what tests leave running (and the run then fails)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.leftovers import find_leftovers, remove


def test_the_leftover_check_finds_a_labelled_service_and_a_server_left_in_a_test_folder(
    tmp_path,
):
    inside, outside = tmp_path / "run", tmp_path.parent / f"{tmp_path.name}-sibling"
    labelled = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env=os.environ | {"LAUNCHBAY_ROOT": str(inside / "data" / "runtime" / "process")},
    )
    named = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", str(inside / "data")]
    )
    elsewhere = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", str(outside / "data")]
    )
    try:
        found = find_leftovers([inside], settle=0)
        assert {int(item.id) for item in found} == {labelled.pid, named.pid}
        assert any("space None" in str(item) for item in found)
        remove(found)
        labelled.wait(timeout=10)
        named.wait(timeout=10)
        assert find_leftovers([inside], settle=0) == []
    finally:
        for process in (labelled, named, elsewhere):
            process.kill()
            process.wait()
