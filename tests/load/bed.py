"""The checker against the test bed: a fresh user per route, seeded on both
servers, Dovecot's new server directly and imapmerge in front of both."""

import os
import shutil
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
for sub in ("testbed", "integration"):
    path = os.path.join(TOP, "tests", sub)
    if path not in sys.path:
        sys.path.insert(0, path)

import tb  # noqa: E402
from proxy import Imapmerge  # noqa: E402

from .runner import run_check  # noqa: E402

ROUTES = ("direct", "imapmerge")


def seeded_user(tbdir, seed_value=77):
    """A fresh user with 20 messages in INBOX on the legacy server, 10 of
    them also on the new one (migrated)."""
    name, password = tb.take_user(tbdir)
    tb.seed(tbdir, name, count=20, migrated=10, seed_value=seed_value)
    return name, password


def replay_line(route, sessions, seconds):
    return (f"python3 tests/load --testbed --route {route} --sessions "
            f"{sessions} --seconds {seconds} --seed {{seed}}")


def check_route(env, route, im_port, sessions, seconds, seed=None, user=None):
    """One run of the checker on route 'direct' (the new Dovecot's IMAPS
    port) or 'imapmerge' (im_port); returns the Report."""
    user = user or seeded_user(env["TESTBED_DIR"])
    port = env["NEW_IMAPS_PORT"] if route == "direct" else im_port
    return run_check("localhost", port, env["TESTBED_CA"], user[0], user[1],
                     sessions=sessions, seconds=seconds, seed=seed,
                     label=route,
                     replay=replay_line(route, sessions, seconds))


class Bed:
    """A scratch test bed and imapmerge on it (for the command line and
    the benchmark); `with Bed() as bed: bed.check(...)`."""

    def __init__(self, extra_conf="max-preauth-per-ip 1000\n", ttl=1800):
        self.extra_conf = extra_conf
        self.ttl = ttl
        self.scratch = self.env = self.im = None

    def __enter__(self):
        self.scratch = tempfile.mkdtemp(prefix="imapmerge-loadcheck-")
        self.env = tb.up(self.scratch, ttl=self.ttl)
        conf = self.env["IMAPMERGE_CONF"]
        with open(conf, "a") as f:
            f.write(self.extra_conf)
        self.im = Imapmerge(conf, os.path.join(self.scratch, "imapmerge.log"),
                            self.env["IMAPMERGE_IMAP_PORT"],
                            self.env["IMAPMERGE_IMAPS_PORT"]).start()
        return self

    def check(self, route, sessions, seconds, seed=None):
        return check_route(self.env, route, self.im.imaps_port, sessions,
                           seconds, seed)

    def __exit__(self, *exc):
        if self.im is not None:
            self.im.stop(timeout=30)
        tb.down(self.scratch)
        if os.environ.get("IMAPMERGE_KEEP_TESTBED"):
            print(f"# test bed kept in {self.scratch}", file=sys.stderr)
        else:
            shutil.rmtree(self.scratch, ignore_errors=True)
