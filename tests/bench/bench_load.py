#!/usr/bin/python3
"""Many sessions of one user doing random work (make bench): the load
checker (tests/load, docs/testbed.md "The load checker") with 10 and then
50 sessions for 60 s each, directly against the test bed's new Dovecot and
through imapmerge in front of both servers (a fresh seeded user each run).
Every answer is checked against each session's model as it goes, so the
throughput comes with its correctness.  Prints `name value unit` lines:

  load{10,50}_cmds_per_s_{direct,imapmerge}   commands answered per second
  load{10,50}_vs_direct                       imapmerge / direct
  load{10,50}_errors_{direct,imapmerge}       failed commands, malformed
                                              answers, lost connections
  load{10,50}_inconsistencies_{direct,imapmerge}
                                              answers that contradict a
                                              session's model or each other

and each run's report as `#` lines.  Exits 1 when any run had an error or
an inconsistency.  BENCH_LOAD_SECONDS shortens the runs (default 60).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import benchenv  # noqa: E402,F401  (paths to the test bed and helpers)
sys.path.insert(0, os.path.join(benchenv.TOP, "tests"))
from load.bed import ROUTES, Bed  # noqa: E402
from loadclient import raise_fd_limit  # noqa: E402

STEPS = (10, 50)
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))


def main():
    raise_fd_limit(4096)
    figures = []
    reports = []
    with Bed() as bed:
        for n in STEPS:
            rate = {}
            for route in ROUTES:
                r = bed.check(route, n, SECONDS)
                reports.append(r)
                rate[route] = r.rate
                figures += [
                    (f"load{n}_cmds_per_s_{route}", r.rate, "commands/s"),
                    (f"load{n}_errors_{route}", r.errors, "count"),
                    (f"load{n}_inconsistencies_{route}", r.inconsistencies,
                     "count")]
            figures.append((f"load{n}_vs_direct",
                            rate["imapmerge"] / rate["direct"]
                            if rate["direct"] else 0.0, "ratio"))
    for r in reports:
        for line in r.text().splitlines():
            print("# " + line)
    for name, value, unit in figures:
        print(f"{name} {value:.4f} {unit}")
    return 1 if any(r.errors or r.inconsistencies for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
