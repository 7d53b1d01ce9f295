"""Differential conformance: the same IMAP exchanges sent to the new Dovecot
directly and through imapmerge answer alike (docs/conformance.md).

Each script of tests/conformance runs in two places:

  a  a folder on the new server only (delivered there, as mail that came
     after the switch): imapmerge's view holds what Dovecot's holds;
  b  a merged folder: every message on both servers (testbed.seed with
     migrated = count, and the real-world-shaped messages on both sides),
     so the merged view equals the new server's folder.

Two test users with the same mail play the two sides: one is read
directly, the other through imapmerge, so that neither run changes what
the other sees.  Both transcripts are normalised (tests/conformance/
harness.py says what each rule hides and why) and compared command by
command.  A difference fails the test unless a row of docs/conformance.md
covers each of its lines.

CONFORMANCE_DUMP=DIR writes both normalised transcripts of each script
and place to DIR/SCRIPT-PLACE.txt; CONFORMANCE_STRICT=1 fails on rows of
docs/conformance.md that covered nothing.
"""

import concurrent.futures
import os
import sys
import warnings

import pytest

import tb

CONFORMANCE = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "conformance")
sys.path.insert(0, CONFORMANCE)

import harness  # noqa: E402
import messages  # noqa: E402

SCRIPTS = [os.path.splitext(os.path.basename(p))[0]
           for p in harness.scripts()]
PLACES = ("a", "b")
ENTRIES = harness.load_entries()
RAN = set()

# What imapmerge advertises after login; every one of these commands (and
# every command of IMAP4rev1) appears in some script.
CAPABILITY = ("IMAP4rev1 LITERAL+ ID ENABLE NAMESPACE CHILDREN SPECIAL-USE "
              "LIST-EXTENDED IDLE UNSELECT UIDPLUS MOVE")
COMMANDS = ["CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE",
            "LOGIN", "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME",
            "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS", "APPEND",
            "CHECK", "CLOSE", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY",
            "UID FETCH", "UID STORE", "UID SEARCH", "UID COPY", "ID",
            "ENABLE", "NAMESPACE", "IDLE", "UNSELECT", "UID EXPUNGE", "MOVE",
            "UID MOVE"]


@pytest.fixture(scope="module")
def accounts(testbed):
    """Two users with the same mail: one read directly, one through
    imapmerge.  Their names have the same length, so that the seeded
    bodies that name them have the same sizes."""
    direct = tb.take_user(testbed.dir)
    merged = tb.take_user(testbed.dir)
    # The pool ("poolNN") may run out between the two ("u" + 10 hex).
    while len(direct[0]) != len(merged[0]):
        direct, merged = merged, tb.take_user(testbed.dir)
    return direct, merged


def folders(script, place):
    box = f"Cf{place.upper()}-{script}"
    return box, box + "-t"


def prepare(testbed, user, script, place):
    """The script's folder and its second folder, for one user."""
    box, other = folders(script, place)
    if place == "a":
        for _, data, when, seen in messages.MAILBOX:
            tb.deliver(testbed.dir, "new", user, box, data, seen=seen,
                       when=when)
        _, data, when, seen = messages.MAILBOX[0]
        tb.deliver(testbed.dir, "new", user, other, data, seen=seen,
                   when=when)
    else:
        for _, data, when, seen in messages.MAILBOX:
            for side in ("legacy", "new"):
                tb.deliver(testbed.dir, side, user, box, data, seen=seen,
                           when=when)
        testbed.seed(user, folder=box, count=6, migrated=6, seed_value=61)
        testbed.seed(user, folder=other, count=2, migrated=2, seed_value=62)
    return box, other


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("script", SCRIPTS)
def test_conformance(testbed, imapmerge, accounts, script, place):
    steps = harness.load_script(os.path.join(CONFORMANCE, script + ".txt"))
    (d_user, d_pass), (m_user, m_pass) = accounts
    box, other = prepare(testbed, d_user, script, place)
    prepare(testbed, m_user, script, place)
    ctx = testbed.ctx()
    direct = harness.Side("direct", ctx, int(testbed.NEW_IMAPS_PORT),
                          d_user, d_pass, box, other)
    merged = harness.Side("imapmerge", ctx, imapmerge.imaps_port, m_user,
                          m_pass, box, other)
    # The two sides share nothing (two users, two servers): they run at
    # the same time.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        run_d = pool.submit(harness.run, direct, steps)
        run_m = pool.submit(harness.run, merged, steps)
        recs_d, recs_m = run_d.result(), run_m.result()
    norm_d, norm_m = harness.Normaliser(direct), harness.Normaliser(merged)
    diffs = harness.compare(script, place, recs_d, recs_m, norm_d, norm_m,
                            ENTRIES)
    dump = os.environ.get("CONFORMANCE_DUMP")
    if dump:
        os.makedirs(dump, exist_ok=True)
        with open(os.path.join(dump, f"{script}-{place}.txt"), "w") as f:
            f.write(harness.transcript(recs_d, recs_m, norm_d, norm_m))
    RAN.add((script, place))
    bad = [d for d in diffs if d.unlisted]
    for d in diffs:
        if not d.unlisted:
            print(f"listed ({', '.join(sorted(d.ids))}): {d.where} "
                  f"{d.command}")
    report = "\n\n".join(d.show() for d in bad)
    if bad:
        print(report)
    assert not bad, (f"{len(bad)} difference(s) not listed in "
                     f"docs/conformance.md:\n\n{report}")


def test_capability_is_what_the_scripts_cover(testbed, imapmerge, accounts):
    """imapmerge advertises what the scripts were written for: a new
    capability needs scripts (and COMMANDS) here first."""
    side = harness.Side("imapmerge", testbed.ctx(), imapmerge.imaps_port,
                        *accounts[1], "INBOX", "INBOX")
    conn, _ = side.connect()
    try:
        got = side.simple(conn, "CAPABILITY")
    finally:
        conn.close()
    line = next(r.text for r in got if r.text.startswith("* CAPABILITY "))
    assert set(line.split()[2:]) == set(CAPABILITY.split()), line


def test_scripts_cover_every_command():
    """At least 300 commands, and every command imapmerge offers."""
    total = 0
    text = ""
    for path in harness.scripts():
        steps = harness.load_script(path)
        total += harness.count_commands(steps)
        for s in steps:
            text += "\n" + s.line.upper()
            for kind, arg in s.actions:
                text += "\n" + arg.upper()
    assert total >= 300, total
    missing = [c for c in COMMANDS if f"\n{c}" not in text and
               f"\n{c} " not in text]
    assert not missing, missing


def test_every_entry_still_needed():
    """Once every script ran in both places, a row of docs/conformance.md
    that covered nothing is stale: its difference is gone (fixed), and the
    row should go.  Reported as a warning (a difference that depends on
    timing may not show in every run); CONFORMANCE_STRICT=1 fails on it."""
    if RAN != {(s, p) for s in SCRIPTS for p in PLACES}:
        pytest.skip("not every script ran")
    ids = sorted({e.id for e in ENTRIES})
    stale = [i for i in ids if not any(e.used for e in ENTRIES if e.id == i)]
    if stale and os.environ.get("CONFORMANCE_STRICT"):
        pytest.fail(f"rows of docs/conformance.md that matched nothing: "
                    f"{stale}")
    if stale:
        warnings.warn(f"rows of docs/conformance.md that matched nothing "
                      f"(fixed? remove them): {stale}")
