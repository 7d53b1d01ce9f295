"""Smoke tests of the test bed itself: the servers are what later tests
assume they are (shapes, TLS, XOAUTH2, submission with Office 365's Sent
copy), and seeding and the copier make the migration situation."""

import base64
import email
import imaplib
import json
import os
import re
import smtplib
import socket
import shutil
import ssl
import tempfile
import time

import pytest

import tb


def list_names(conn):
    typ, data = conn.list('""', "*")
    assert typ == "OK"
    out = {}
    for line in data:
        m = re.match(rb'\(([^)]*)\) "(.)" (.*)$', line)
        name = m.group(3).decode().strip('"')
        out[name] = (m.group(1).decode().split(), m.group(2).decode())
    return out


@pytest.mark.parametrize("side", ["new", "legacy"])
def test_imaps_and_starttls_verify(testbed, side):
    c = testbed.imaps(side)
    assert c.noop()[0] == "OK"
    c.logout()
    c = testbed.imap_starttls(side)
    assert c.noop()[0] == "OK"
    c.logout()
    # A client that trusts another CA must refuse the server.
    other = ssl.create_default_context(
        cafile=os.path.join(testbed.dir, "ca", "other-ca.crt"))
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL("localhost", int(getattr(
            testbed, f"{side.upper()}_IMAPS_PORT")), ssl_context=other)


def test_new_is_shaped_like_office365(testbed, user):
    c = testbed.imaps("new", *user)
    names = list_names(c)
    for name, su in tb.NEW_ROLE_FOLDERS.items():
        assert su in names[name][0], (name, names[name])
    assert all(sep == "/" for _, sep in names.values())
    c.logout()


def test_legacy_is_shaped_like_mailsuite(testbed, user):
    c = testbed.imaps("legacy", *user)
    names = list_names(c)
    assert "&kAFP4W4IMH8-" in names                  # 送信済み
    assert tb.mutf7_encode("ごみ箱") in names
    assert tb.mutf7_encode("迷惑メール") in names
    assert "Drafts" in names and "Archive.2019" in names
    assert all(sep == "." for _, sep in names.values())
    specials = {"\\Sent", "\\Trash", "\\Junk", "\\Drafts", "\\Archive"}
    assert not any(specials & set(a) for a, _ in names.values())
    c.logout()


def xoauth2(testbed, user, token, mech="XOAUTH2"):
    c = testbed.imaps("new", login=False)
    if mech == "XOAUTH2":
        raw = f"user={user}\x01auth=Bearer {token}\x01\x01"
    else:
        raw = f"n,a={user},\x01auth=Bearer {token}\x01\x01"
    # Dovecot answers a refused token with a "+ <json>" challenge: the
    # client sends an empty response and gets the tagged NO.
    answers = iter([raw.encode(), b""])
    try:
        typ, _ = c.authenticate(mech, lambda _: next(answers))
        return typ
    except imaplib.IMAP4.error:
        return "NO"
    finally:
        try:
            c.logout()
        except Exception:
            pass


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_oauth_tokens(testbed, mech):
    assert xoauth2(testbed, "alice", testbed.token("alice"), mech) == "OK"
    assert xoauth2(testbed, "alice", testbed.token("alice", expired=True),
                   mech) == "NO"
    assert xoauth2(testbed, "alice", testbed.token("alice", wrong_key=True),
                   mech) == "NO"
    assert xoauth2(testbed, "alice", testbed.token("bob"), mech) == "NO"


def wait_for(fn, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = fn()
        if r:
            return r
        time.sleep(0.1)
    return fn()


def fetch_all(testbed, side, user, folder):
    c = testbed.imaps(side, *user)
    typ, _ = c.select(f'"{folder}"', readonly=True)
    assert typ == "OK"
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
    c.logout()
    return [email.message_from_bytes(x[1]) for x in data
            if isinstance(x, tuple)]


@pytest.mark.parametrize("side", ["new", "legacy"])
def test_submission(testbed, user, side):
    sender, password = user
    rcpt = "r" + sender
    testbed.adduser(rcpt)
    mid = f"<smoke-{side}-{sender}@example.ac.jp>"
    msg = (f"From: {sender}@example.ac.jp\r\nTo: {rcpt}@example.ac.jp\r\n"
           f"Subject: smoke {side}\r\nMessage-ID: {mid}\r\n\r\nhello\r\n")
    s = smtplib.SMTP("localhost", int(getattr(
        testbed, f"{side.upper()}_SUBMISSION_PORT")), timeout=20)
    s.starttls(context=testbed.ctx())
    s.login(sender, password)
    s.sendmail(f"{sender}@example.ac.jp", [f"{rcpt}@example.ac.jp"], msg)
    s.quit()
    got = wait_for(lambda: fetch_all(testbed, "new", (rcpt, "secret"),
                                     "INBOX"))
    assert [m["Message-ID"] for m in got] == [mid]
    assert got[0]["X-Testbed-Relay"] == side
    sent = fetch_all(testbed, "new", user, "Sent Items")
    if side == "new":
        assert [m["Message-ID"] for m in sent] == [mid]
    else:
        assert sent == []
    with open(os.path.join(testbed.dir, f"sink-{side}.jsonl")) as f:
        assert any(json.loads(l)["message_id"] == mid for l in f)


def test_seed_and_copier(testbed, user):
    name, password = user
    t0 = time.monotonic()
    testbed.seed(name, count=200, migrated=50)
    assert time.monotonic() - t0 < 5
    legacy = testbed.imaps("legacy", *user)
    new = testbed.imaps("new", *user)
    assert legacy.select("INBOX", readonly=True)[1] == [b"200"]
    assert new.select("INBOX", readonly=True)[1] == [b"50"]
    new.logout()
    flags_before = legacy.uid("FETCH", "1:*", "(FLAGS INTERNALDATE "
                              "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")[1]
    legacy.logout()

    assert testbed.copy(name, password) == 150
    assert testbed.copy(name, password) == 0        # a re-run copies nothing
    new = testbed.imaps("new", *user)
    assert new.select("INBOX", readonly=True)[1] == [b"200"]
    after = new.uid("FETCH", "1:*", "(FLAGS INTERNALDATE "
                    "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")[1]
    new.logout()

    def index(data):
        out = {}
        for item in data:
            if isinstance(item, tuple):
                mid = re.search(rb"<[^>]*>", item[1]).group(0)
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1)
                date = re.search(rb'INTERNALDATE "([^"]*)"', item[0]).group(1)
                flags = set(flags.split()) - {b"\\Recent"}
                assert mid not in out, "duplicate Message-ID"
                out[mid] = (flags, date)
        return out
    assert index(after) == index(flags_before)


def test_copier_maps_role_folders(testbed, user):
    name, password = user
    testbed.seed(name, folder="Sent Items", count=5, migrated=0, seed_value=2)
    testbed.seed(name, folder="Archive/2019", count=3, migrated=0,
                 seed_value=3)
    testbed.copy(name, password)
    new = testbed.imaps("new", *user)
    assert new.select('"Sent Items"', readonly=True)[1] == [b"5"]
    assert new.select('"Archive/2019"', readonly=True)[1] == [b"3"]
    new.logout()


def test_down_stops_everything():
    # Not pytest's tmp_path: Dovecot, running as its own user, must be able
    # to reach the directory.
    d = tempfile.mkdtemp(prefix="imapmerge-tb-down-")
    env = tb.up(d, ttl=60)
    pids = [int(l.split()[1]) for l in open(os.path.join(d, "pids"))]
    tb.down(d)
    time.sleep(0.2)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    for port in ("NEW_IMAPS_PORT", "LEGACY_IMAP_PORT", "SINK_NEW_PORT"):
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(env[port])), 0.5)
    tb.down(d)                                       # idempotent
    shutil.rmtree(d)
