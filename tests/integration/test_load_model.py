"""Level 4 (STYLE.md): ten sessions of ONE user at once, each doing random
IMAP work for 20 s and checking every answer against its own model of what
it must see (tests/load, docs/testbed.md "The load checker") — directly
against the test bed's new Dovecot, and through imapmerge in front of both
servers.  Both routes must show no error and no inconsistency.

A failure prints the report: counts by kind, the first examples (command,
answer, what was wrong, the commands before) and the line that replays the
run with its seed.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
from load import run_check  # noqa: E402
from load.bed import replay_line, seeded_user  # noqa: E402
from load.wire import Malformed, parse_response  # noqa: E402

SESSIONS = 10
SECONDS = 20


def check(testbed, route, port):
    user = seeded_user(testbed.dir)
    report = run_check("localhost", port, testbed.TESTBED_CA, *user,
                       sessions=SESSIONS, seconds=SECONDS, label=route,
                       replay=replay_line(route, SESSIONS, SECONDS))
    print(report.text())
    # It did the work it checks: every session kept appending and looking.
    assert report.commands > SESSIONS * 20, report.text()
    assert report.appended >= SESSIONS and report.checkpoints >= SESSIONS, \
        report.text()
    assert report.errors == 0, "\n" + report.text()
    assert report.inconsistencies == 0, "\n" + report.text()


def test_sessions_of_one_user_directly(testbed):
    check(testbed, "direct", testbed.NEW_IMAPS_PORT)


def test_sessions_of_one_user_through_imapmerge(testbed, imapmerge):
    check(testbed, "imapmerge", imapmerge.imaps_port)


# The checker's own grammar is strict where servers and imapmerge went
# wrong before: a list joined to a list, the largest UID, numbers past it.
GOOD = [
    b'* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL '
    b'"7bit" 3 1 NIL NIL NIL NIL)("text" "html" NIL NIL NIL "7bit" 9 1) '
    b'"alternative" ("boundary" "b") NIL NIL NIL))\r\n',
    b'* 2 FETCH (UID 4294967295 FLAGS (\\Seen $label1) ENVELOPE (NIL "s" '
    b'(("A" NIL "a" "x.jp")) NIL NIL (("B" NIL "b" "x.jp")("C" NIL "c" '
    b'"x.jp")) NIL NIL NIL "<m@x>"))\r\n',
    b'* 3 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {12}\r\nSubject: a\r\n '
    b'BODY[TEXT]<0> "abc")\r\n',
    b'* OK [PERMANENTFLAGS (\\Seen $Junk \\*)] Flags permitted.\r\n',
    b'* SEARCH\r\n',
    b'a1 OK [COPYUID 7 1:3 10,12:13] Done\r\n',
]
BAD = [
    # ") (" where RFC 3501 joins the parts of a multipart body
    b'* 1 FETCH (BODYSTRUCTURE (("text" "plain" NIL NIL NIL "7bit" 3 1) '
    b'("text" "html" NIL NIL NIL "7bit" 9 1) "alternative"))\r\n',
    b'* 2 FETCH (UID 4294967296)\r\n',
    b'* 2 FETCH (UID 0)\r\n',
    b'* 3 FETCH (FLAGS (\\Seen)\r\n',
    b'* 3 FETCH (FLAGS (\\Seen)) \r\n',
    b'* 4 FETCH (ENVELOPE (NIL "s" NIL NIL NIL NIL NIL NIL NIL))\r\n',
    b'* 5 FETCH (BODY[TEXT] "caf\xc3\xa9")\r\n',
    b'* 6 FETCH (BODY[TEXT] {5}\r\nabc)\r\n',
    b'* SEARCH 1 0\r\n',
    b'* OK [UIDNEXT 5]\r\n',
    b'* 7 EXPUNGE\n',
    b'* FOO bar\r\n',
]


@pytest.mark.parametrize("raw", GOOD)
def test_checker_accepts(raw):
    parse_response(raw)


@pytest.mark.parametrize("raw", BAD)
def test_checker_refuses(raw):
    with pytest.raises(Malformed):
        parse_response(raw)
