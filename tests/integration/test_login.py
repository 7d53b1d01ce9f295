"""Issue 3: log in once through imapmerge and see ONE folder tree.

Real Dovecot backends from the test bed, imapmerge started on the test
bed's config; clients are Python's imaplib and raw sockets (for the wire
bytes of bad input)."""

import imaplib
import os
import re
import socket
import ssl
import time

import pytest

import tb
from proxy import SANITIZED, Imapmerge, variant_conf

EXPECTED_TREE = {
    "INBOX": set(),
    "Archive": {"\\Archive", "\\HasChildren"},
    "Archive/2019": {"\\HasNoChildren"},
    "Deleted Items": {"\\Trash", "\\HasNoChildren"},
    "Drafts": {"\\Drafts", "\\HasNoChildren"},
    "Junk Email": {"\\Junk", "\\HasNoChildren"},
    "Sent Items": {"\\Sent", "\\HasNoChildren"},
}


def connect(testbed, im, mode):
    if mode == "imaps":
        return imaplib.IMAP4_SSL("localhost", im.imaps_port,
                                 ssl_context=testbed.ctx(), timeout=20)
    c = imaplib.IMAP4("localhost", im.imap_port, timeout=20)
    c.starttls(ssl_context=testbed.ctx())
    return c


def login(c, user, password, how):
    if how == "login":
        return c.login(user, password)
    raw = f"\0{user}\0{password}".encode()
    return c.authenticate("PLAIN", lambda _: raw)


def tree(c):
    typ, data = c.list('""', "*")
    assert typ == "OK"
    out = {}
    for line in data:
        m = re.match(rb'\(([^)]*)\) "/" (.*)$', line)
        assert m, line
        name = m.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1]
        out[tb.mutf7_decode(name)] = set(m.group(1).decode().split())
    return out


def add_folders(testbed, user):
    """User folders on both sides, the way people have them."""
    leg = testbed.imaps("legacy", *user)
    for name in ("Projects", "Projects.Alpha", tb.mutf7_encode("研究室")):
        assert leg.create(name)[0] == "OK"
    leg.logout()
    new = testbed.imaps("new", *user)
    for name in ("Projects", "Research", "Calendar", "Contacts"):
        assert new.create(name)[0] == "OK"
    new.logout()


@pytest.mark.parametrize("mode", ["starttls", "imaps"])
@pytest.mark.parametrize("how", ["login", "authenticate"])
def test_login_shows_one_tree(testbed, imapmerge, user, mode, how):
    add_folders(testbed, user)
    c = connect(testbed, imapmerge, mode)
    typ, data = login(c, *user, how)
    assert typ == "OK" and b"CAPABILITY" in data[0]
    want = dict(EXPECTED_TREE)
    want.update({"Projects": {"\\HasChildren"},
                 "Projects/Alpha": {"\\HasNoChildren"},
                 "Research": {"\\HasNoChildren"},
                 "研究室": {"\\HasNoChildren"}})
    got = tree(c)
    assert set(got) == set(want), set(got) ^ set(want)
    for name, attrs in want.items():
        assert attrs <= got[name], (name, got[name])
    # No folder is shown twice and Exchange's non-mail folders are hidden.
    assert "Calendar" not in got and "Contacts" not in got
    # Japanese names travel as modified UTF-7 and can be selected by it.
    typ, data = c.list('""', tb.mutf7_encode("研究室"))
    assert typ == "OK" and b"&eBR6dlupWQ-" in data[0] or \
        tb.mutf7_encode("研究室").encode() in data[0]
    assert c.logout()[0] == "BYE"


def test_list_patterns_and_options(testbed, imapmerge, user):
    c = connect(testbed, imapmerge, "imaps")
    login(c, *user, "login")
    typ, data = c.list('""', "%")
    top = {tb.mutf7_decode(l.split(b' "/" ')[1].decode().strip('"'))
           for l in data}
    assert "Archive" in top and "Archive/2019" not in top
    typ, data = c.list('""', "Archive/%")
    assert len(data) == 1 and b"Archive/2019" in data[0]
    typ, data = c.list('""', "inbox")
    assert data[0].endswith(b"INBOX")
    typ, data = c.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    typ, data = c._simple_command("LIST", '""', '"*"', "RETURN",
                                  "(SPECIAL-USE SUBSCRIBED)")
    lines = c.untagged_responses.pop("LIST", [])
    assert typ == "OK"
    sent = [l for l in lines if b"Sent Items" in l][0]
    assert b"\\Sent" in sent and b"\\Subscribed" in sent
    typ, data = c.lsub('""', "*")
    assert typ == "OK" and any(b"Sent Items" in l for l in data)
    c.logout()


def test_create_lands_on_new_only(testbed, imapmerge, user):
    c = connect(testbed, imapmerge, "imaps")
    login(c, *user, "login")
    assert c.create("Projects/2026")[0] == "OK"
    assert "Projects/2026" in tree(c)
    assert c.create("Projects/2026")[0] == "NO"
    c.logout()
    new = testbed.imaps("new", *user)
    assert any(b"Projects/2026" in l for l in new.list('""', "*")[1])
    new.logout()
    leg = testbed.imaps("legacy", *user)
    assert not any(b"2026" in l for l in leg.list('""', "*")[1])
    leg.logout()


def test_rename_and_delete_leave_legacy_untouched(testbed, imapmerge, user):
    add_folders(testbed, user)
    leg = testbed.imaps("legacy", *user)
    before = sorted(leg.list('""', "*")[1])
    leg.logout()

    c = connect(testbed, imapmerge, "imaps")
    login(c, *user, "login")
    assert c.rename("Projects", "Work")[0] == "OK"
    assert c.delete(tb.mutf7_encode("研究室"))[0] == "OK"
    got = tree(c)
    assert "Work" in got and "Work/Alpha" in got and "Projects" not in got
    assert "研究室" not in got
    c.logout()

    leg = testbed.imaps("legacy", *user)
    assert sorted(leg.list('""', "*")[1]) == before
    leg.logout()
    # After a new login the tree is the same: the state remembered it.
    c = connect(testbed, imapmerge, "starttls")
    login(c, *user, "login")
    again = tree(c)
    assert again == got
    c.logout()


def test_wrong_password_names_no_backend(testbed, imapmerge, user):
    c = connect(testbed, imapmerge, "imaps")
    with pytest.raises(imaplib.IMAP4.error) as e:
        c.login(user[0], "wrong-" + user[1])
    text = str(e.value)
    assert "[AUTHENTICATIONFAILED]" in text
    assert "legacy" not in text.lower() and "new" not in text.lower()
    c.logout()
    assert f"event=auth-failed user={user[0]}" in imapmerge.log()


def raw_session(port, tls_ctx=None, src="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(src, 0))
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname="localhost")
    f = s.makefile("rwb", buffering=0)
    greeting = f.readline()
    assert greeting.startswith(b"* OK")
    return s, f, greeting


def test_no_plaintext_login_before_starttls(testbed, imapmerge):
    s, f, greeting = raw_session(imapmerge.imap_port)
    assert b"LOGINDISABLED" in greeting and b"AUTH=" not in greeting
    f.write(b"a LOGIN alice secret\r\n")
    assert f.readline().startswith(b"a NO [PRIVACYREQUIRED]")
    f.write(b"b AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n")
    assert f.readline().startswith(b"b NO [PRIVACYREQUIRED]")
    s.close()


def start_variant(testbed, name, replace=(), xoauth2=False):
    path, imap, imaps = variant_conf(testbed, name + ".conf", replace,
                                     xoauth2)
    im = Imapmerge(path, os.path.join(testbed.dir, name + ".log"), imap,
                   imaps)
    return im.start()


def test_backend_from_another_ca_is_unavailable(testbed):
    """A new server whose certificate does not verify is never used: the
    login is served by the legacy side alone, with an [ALERT] saying so,
    and what needs the new server answers NO [UNAVAILABLE]."""
    im = start_variant(testbed, "other-ca", [(
        'imap localhost:%s tls\n\tsubmission localhost:%s starttls\n\t'
        'ca-file "%s/ca/ca.crt"' % (testbed.NEW_IMAPS_PORT,
                                    testbed.NEW_SUBMISSION_PORT, testbed.dir),
        'imap localhost:%s tls\n\tsubmission localhost:%s starttls\n\t'
        'ca-file "%s/ca/other-ca.crt"' % (testbed.NEW_IMAPS_PORT,
                                          testbed.NEW_SUBMISSION_PORT,
                                          testbed.dir))])
    try:
        c = connect(testbed, im, "imaps")
        assert c.login("alice", "secret")[0] == "OK"
        assert any(b"[ALERT] The new mail server" in l
                   for l in c.untagged_responses.get("OK", []))
        assert "certificate verification failed" in im.log()
        assert "INBOX" in tree(c)
        typ, data = c.create("NeverMade")
        assert typ == "NO" and b"[UNAVAILABLE]" in data[0]
        c.logout()
    finally:
        im.stop()


def test_unreachable_backend_is_unavailable_in_time(testbed):
    dead = tb.free_ports(1)[0]
    # Without offline-auth: a user who logged in before would be let in
    # on the hash kept from then (test_resilience.py).
    im = start_variant(testbed, "unreachable", [(
        "imap localhost:%s tls" % testbed.LEGACY_IMAPS_PORT,
        "imap localhost:%s tls" % dead),
        ("poll-interval 2s", "poll-interval 2s\noffline-auth no")])
    try:
        c = connect(testbed, im, "imaps")
        t0 = time.monotonic()
        with pytest.raises(imaplib.IMAP4.error) as e:
            c.login("alice", "secret")
        assert time.monotonic() - t0 < 5.5        # connect-timeout 5s
        assert "[UNAVAILABLE]" in str(e.value)
        assert "event=login-unavailable" in im.log()
    finally:
        im.stop()


def test_xoauth2_token_command(testbed):
    im = start_variant(testbed, "xoauth2", xoauth2=True)
    try:
        c = connect(testbed, im, "imaps")
        assert c.login("alice", "secret")[0] == "OK"
        assert "Sent Items" in tree(c)
        c.logout()
    finally:
        im.stop()
    im = start_variant(testbed, "xoauth2-expired", [(" %u\"",
                       " --expired %u\"")], xoauth2=True)
    try:
        # A refused token leaves the legacy side serving, with an [ALERT].
        c = connect(testbed, im, "imaps")
        assert c.login("alice", "secret")[0] == "OK"
        assert any(b"[ALERT] The new mail server" in l
                   for l in c.untagged_responses.get("OK", []))
        assert re.search(r"backend-login-refused backend=new user=alice",
                         im.log())
        c.logout()
    finally:
        im.stop()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_bad_input_before_login(testbed, imapmerge):
    ctx = testbed.ctx()
    base = rss_kb(imapmerge.proc.pid)
    for _ in range(20):
        # A 100 kB line: one BAD, and the session goes on.
        s, f, _ = raw_session(imapmerge.imaps_port, ctx)
        f.write(b"a NOOP " + b"x" * 100000 + b"\r\nb NOOP\r\n")
        assert f.readline().startswith(b"a BAD line too long")
        assert f.readline().startswith(b"b OK")
        s.close()
    s, f, _ = raw_session(imapmerge.imaps_port, ctx)
    f.write(b'a"b NOOP\r\n')                   # invalid tag: never echoed
    assert f.readline() == b"* BAD invalid tag\r\n"
    f.write(b"c LOGIN {20000}\r\n")            # over the pre-login limit
    assert f.readline().startswith(b"c BAD literal too large")
    f.write(b"d NOOP\r\n")
    assert f.readline().startswith(b"d OK")
    f.write(b"e LOGIN {20000+}\r\n")           # its data would follow
    assert f.readline().startswith(b"e BAD literal too large")
    assert f.readline().startswith(b"* BYE")
    s.close()
    s, f, _ = raw_session(imapmerge.imaps_port, ctx)
    for i in range(10):
        f.write(b"t%d FROBNICATE\r\n" % i)
    lines = [f.readline() for _ in range(11)]
    assert all(l.startswith(b"t%d BAD" % i) for i, l in enumerate(lines[:10]))
    assert lines[10].startswith(b"* BYE")
    s.close()
    assert imapmerge.alive()
    # 20 x 100 kB went through; the process did not keep them.  (Under
    # AddressSanitizer freed memory sits in its quarantine for a while.)
    limit = 65536 if SANITIZED \
        else 4096
    assert rss_kb(imapmerge.proc.pid) - base < limit
