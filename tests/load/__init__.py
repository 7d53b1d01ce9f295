"""The multi-session load checker: many sessions of ONE user, each doing
random IMAP work for a bounded time and checking every answer and its own
model of what it must see (STYLE.md, tests at level 4).

    from load import run_check
    report = run_check("localhost", port, cafile, user, password,
                       sessions=10, seconds=20, seed=None)
    report.errors, report.inconsistencies, report.rate, report.text()

`python3 tests/load --help` runs it from the command line, against a
server given by port or against a test bed it starts (docs/testbed.md).
"""

from .runner import Report, run_check  # noqa: F401
