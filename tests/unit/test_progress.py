"""Progress a person can follow: step lines from builder.timing, readable remote lines."""
from __future__ import annotations

import io
import logging

from builder.timing import Timings
from lambda3.progress import capture, console, readable


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run_steps() -> None:
    timings = Timings(clock=iter([0.0, 0.0, 1.5, 1.5, 1.75, 9.0]).__next__)
    with timings.step("fetch"):
        pass
    with timings.step("install"):
        logging.getLogger("builder.install").info("Installed 3 packages")


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    with console(stream=stream):
        _run_steps()
    assert stream.getvalue().splitlines() == [
        "step fetch ...", "step fetch done in 1.50 s",
        "step install ...", "Installed 3 packages", "step install done in 0.25 s"]


def test_on_a_terminal_a_step_line_is_finished_in_place():
    stream = _Terminal()
    with console(stream=stream):
        _run_steps()
    assert stream.getvalue() == (
        "fetch ...\r\033[Kfetch done in 1.50 s\n"
        "install ...\nInstalled 3 packages\ninstall done in 0.25 s\n")


def test_json_mode_shows_no_step_lines_and_handlers_are_removed_after():
    stream = io.StringIO()
    before = list(logging.getLogger().handlers)
    with console(json_mode=True, stream=stream):
        _run_steps()
    assert stream.getvalue() == "Installed 3 packages\n"
    assert logging.getLogger().handlers == before


def test_capture_writes_every_line_in_full(tmp_path):
    path = tmp_path / "log.txt"
    with capture(str(path)):
        _run_steps()
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    assert lines[0].endswith(" INFO builder.timing step fetch ...")
    assert lines[3].endswith(" INFO builder.install Installed 3 packages")


def test_cloudwatch_lines_keep_level_and_message():
    line = ("[INFO]\t2026-12-02T05:01:02.345Z\t0f3c2a1e-1b2c-4d5e-8f90-123456789abc\t"
            "step fetch done in 0.12 s")
    assert readable(line) == "INFO step fetch done in 0.12 s"
    warning = "[WARNING]\t2026-12-02T05:01:02.345Z\t0f3c2a1e-1b2c-4d5e-8f90-123456789abc\tslow"
    assert readable(warning) == "WARNING slow"
    for untouched in ("START RequestId: 0f3c Version: $LATEST", "plain output", ""):
        assert readable(untouched) == untouched
