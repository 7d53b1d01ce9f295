"""python3 tests/load [options]: the load checker from the command line.

Against a running server:
    python3 tests/load --port 993 --ca CA --user U --password P
Against a scratch test bed it starts, with imapmerge on it (a replay):
    python3 tests/load --testbed --route imapmerge --sessions 10 \\
        --seconds 20 --seed 1234
Exits 1 when any route had an error or an inconsistency.
"""

import argparse
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    __package__ = "load"            # noqa: A001 - run as a directory

from load import run_check  # noqa: E402


def main():
    ap = argparse.ArgumentParser(prog="python3 tests/load")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--testbed", action="store_true",
                    help="start a scratch test bed and imapmerge")
    ap.add_argument("--route", choices=("direct", "imapmerge", "both"),
                    default="both")
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int)
    ap.add_argument("--ca")
    ap.add_argument("--user")
    ap.add_argument("--password")
    args = ap.parse_args()
    reports = []
    if args.testbed:
        from load.bed import Bed, ROUTES
        routes = ROUTES if args.route == "both" else (args.route,)
        with Bed() as bed:
            for route in routes:
                r = bed.check(route, args.sessions, args.seconds, args.seed)
                print(r.text(), flush=True)
                reports.append(r)
    else:
        if not (args.port and args.ca and args.user and args.password):
            ap.error("--port, --ca, --user and --password, or --testbed")
        r = run_check(args.host, args.port, args.ca, args.user,
                      args.password, args.sessions, args.seconds, args.seed)
        print(r.text())
        reports.append(r)
    return 1 if any(r.errors or r.inconsistencies for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
