from __future__ import annotations

import io

from django_statsd_push.stack.status import Reading, StatusPrinter, status_line

STATS = {"messages.packets_received": "100", "carbon.sent": "42", "carbon.pending": "7"}


def test_rate_needs_two_readings() -> None:
    first = Reading(10.0, STATS)
    assert status_line(None, first) == "packets/s ? | metrics flushed 42 | carbon queue 7"
    second = Reading(12.0, {**STATS, "messages.packets_received": "150"})
    assert status_line(first, second) == "packets/s 25.0 | metrics flushed 42 | carbon queue 7"


def test_missing_or_bad_figures_show_a_question_mark() -> None:
    assert status_line(None, Reading(0, {"carbon.pending": "x"})) == "packets/s ? | metrics flushed ? | carbon queue ?"


def test_not_a_tty_prints_whole_lines_now_and_then() -> None:
    out = io.StringIO()
    printer = StatusPrinter(out, every=30)
    printer.update(STATS, now=0.0)
    printer.update({**STATS, "messages.packets_received": "110"}, now=1.0)
    printer.update({**STATS, "messages.packets_received": "120"}, now=31.0)
    printer.update(None, now=62.0)
    assert out.getvalue().splitlines() == [
        "packets/s 10.0 | metrics flushed 42 | carbon queue 7",
        "packets/s 0.3 | metrics flushed 42 | carbon queue 7",
        "daemon mgmt port not answering",
    ]
    assert "\r" not in out.getvalue()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tty_rewrites_one_line_in_place() -> None:
    out = Tty()
    printer = StatusPrinter(out)
    printer.update(STATS, now=0.0)
    printer.update({**STATS, "messages.packets_received": "110"}, now=1.0)
    printer.clear()
    assert out.getvalue() == (
        "\r\x1b[2Kpackets/s ? | metrics flushed 42 | carbon queue 7"
        "\r\x1b[2Kpackets/s 10.0 | metrics flushed 42 | carbon queue 7\n"
    )
