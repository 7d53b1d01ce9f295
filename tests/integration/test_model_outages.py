"""Issue 22, acceptance 1 (its first half): several sessions of one user
doing random work, each checked against its own model (tests/load), while
the copier copies the legacy mail across and the legacy server is stopped
and started twice.  Nothing a session holds may vanish or change, nothing
may show twice; reading others' mail that only the stopped server holds
may answer NO [UNAVAILABLE] meanwhile, and nothing else may fail.  At the
end every message of the legacy server is visible exactly once.

(The other half, kill -9 of imapmerge at random moments, is not here yet.)
"""

import os
import re
import sys
import threading
import time

import tb
from test_mailbox import login

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
from load import run_check  # noqa: E402

SESSIONS = 5
SECONDS = 24


def copier(testbed, name, password, until):
    """The copier, again and again (as a migration tool's daily runs,
    faster); a run the stopped server breaks is simply run again."""
    runs = 0
    while time.monotonic() < until:
        try:
            # Slowly: the first outage finds mail not yet copied.
            tb.copy(testbed.dir, name, password, rate=1)
            runs += 1
        except Exception:                 # noqa: BLE001 - server stopped
            pass
        time.sleep(0.5)
    return runs


def outages(testbed, events):
    """The legacy server stopped and started twice, 4 s each way."""
    port = int(testbed.LEGACY_IMAPS_PORT)
    try:
        for _ in range(2):
            time.sleep(4)
            tb.stop_dovecot(testbed.dir, "legacy")
            events.append(("down", time.monotonic()))
            time.sleep(4)
            tb.start_dovecot(testbed.dir, "legacy")
            assert tb.wait_banner(port, None)
            events.append(("up", time.monotonic()))
    finally:
        if not events or events[-1][0] != "up":
            tb.start_dovecot(testbed.dir, "legacy")
            tb.wait_banner(port, None)


def message_ids(c, folder):
    typ, data = c.select(folder, readonly=True)
    assert typ == "OK", data
    if data == [b"0"]:
        return []
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    return [re.search(rb"<[^>]*>", d[1]).group(0).decode()
            for d in data if isinstance(d, tuple)]


def test_sessions_while_the_copier_runs_and_legacy_stops(testbed, imapmerge):
    name, password = tb.take_user(testbed.dir)
    seeded = tb.seed(testbed.dir, name, count=20, migrated=6,
                     seed_value=2201)
    # Logged in once while the legacy server is up: the offline hash lets
    # the sessions log in again while it is down.
    c = login(testbed, imapmerge, (name, password))
    assert len(message_ids(c, "INBOX")) == 20
    c.logout()
    t0 = time.monotonic()
    while f"event=offline-hash-stored user={name}" not in imapmerge.log():
        assert time.monotonic() - t0 < 10
        time.sleep(0.1)

    events, runs = [], []
    until = time.monotonic() + SECONDS
    down = threading.Thread(target=outages, args=(testbed, events))
    copy = threading.Thread(
        target=lambda: runs.append(copier(testbed, name, password, until)))
    down.start()
    copy.start()
    try:
        report = run_check("localhost", imapmerge.imaps_port,
                           testbed.TESTBED_CA, name, password,
                           sessions=SESSIONS, seconds=SECONDS,
                           label="imapmerge, copier and outages",
                           unavailable_ok=True)
    finally:
        down.join()
        copy.join()
    print(report.text())
    assert [e for e, _ in events] == ["down", "up", "down", "up"], events
    assert runs and runs[0] > 0, "the copier never completed a run"
    assert report.commands > SESSIONS * 20, report.text()
    assert report.errors == 0, "\n" + report.text()
    assert report.inconsistencies == 0, "\n" + report.text()

    # The copier once more with the server up: all of the legacy mail is
    # on the new server; each message shows once, none is missing.
    tb.copy(testbed.dir, name, password)
    c = login(testbed, imapmerge, (name, password))
    inbox = message_ids(c, "INBOX")
    for mid in seeded:
        assert inbox.count(mid) == 1, (mid, inbox.count(mid))
    dups = {m for m in inbox if inbox.count(m) > 1}
    assert not dups, dups
    c.logout()
    assert imapmerge.alive()
