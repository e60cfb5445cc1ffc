"""Soak: mixed concurrent operations from several processes, bounded in time, with memory and
open files sampled (issue 6's bar: RSS and open files flat, within 10%, between the first and
the last minute; no leaked temporary files).

The runner is ``soak.py`` (its docstring says what the workers do). When this test is selected
the runner starts in the background as soon as collection ends (``conftest.py``) and runs beside
the rest of the suite with its own SeaweedFS; this test waits for its report. The other tests
load the machine unevenly meanwhile, which changes how many operations a minute gets done, not
how much memory or how many files an operation leaves behind.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest
from reliability_conftest import SOAK, Soak, start_soak

#: Growth allowed between the first and the last minute (the issue's bar).
FLAT = 0.10
MINUTE = 60.0


def _report(request: pytest.FixtureRequest) -> tuple[Soak, dict[str, Any]]:
    soak = request.config.stash.get(SOAK, None) or start_soak()
    try:
        code = soak.process.wait(timeout=soak.seconds + 900)
    except Exception:
        soak.process.kill()
        raise
    log = soak.log.read_text(errors="replace")[-4000:]
    assert code == 0, f"the soak runner failed (exit {code}):\n{log}"
    return soak, json.loads(soak.out.read_text())


@pytest.mark.slow
def test_soak_memory_and_open_files_stay_flat(request: pytest.FixtureRequest) -> None:
    soak, report = _report(request)
    assert soak.seconds >= 2 * MINUTE, "a soak shorter than two minutes proves nothing here"
    # Nothing went wrong: no wrong bytes, no errors, every worker ran every kind of operation.
    assert report["exit_codes"] == [0] * soak.workers
    total = 0
    for worker in report["reports"]:
        assert worker["wrong"] == [], worker["wrong"]
        assert worker["errors"] == [], worker["errors"]
        assert min(worker["counts"].values()) > 0, worker["counts"]
        assert worker["leftover_files"] == [], "temporary or downloaded files left behind"
        total += sum(worker["counts"].values())
    assert total >= 1_000, f"only {total} operations in {soak.seconds} s"
    assert report["internal_objects"] == [], "objects left under .deltaglider/"
    assert report["open_uploads"] == [], "multipart uploads left open"

    # Flat: each worker's median RSS and open files in the last minute against the first.
    end = soak.seconds
    for index in range(soak.workers):
        samples = [s for s in report["samples"] if s["worker"] == index]
        first = [s for s in samples if s["t"] < MINUTE]
        last = [s for s in samples if s["t"] >= end - MINUTE]
        assert len(first) >= 10 and len(last) >= 10, (len(first), len(last))
        for what in ("rss", "fds"):
            a = statistics.median(s[what] for s in first)
            b = statistics.median(s[what] for s in last)
            assert b <= a * (1 + FLAT), (
                f"worker {index}: {what} grew from {a:,.0f} (first minute) to {b:,.0f} "
                f"(last minute), over {FLAT:.0%}"
            )
