"""Writes through imapmerge land on the new server (issue: writes).

APPEND, Sent-copy absorption, COPY/MOVE, legacy-writes and local keywords,
checked on the test bed's two Dovecot servers directly; the copier plays
the migration.
"""

import imaplib
import re
import socket
import ssl
import threading
import time
import uuid

import pytest

import tb
from test_smtp import submit
from test_mailbox import login, wire


def message(name, subject, body=b"Hello.\r\n", mid=None):
    mid = mid or f"<{uuid.uuid4().hex}@example.ac.jp>"
    return mid, (f"From: {name}@example.ac.jp\r\nTo: someone@example.ac.jp"
                 f"\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
                 f"Date: Tue, 24 Nov 2026 10:00:00 +0900\r\n\r\n").encode() \
        + body


def appenduid(typ, data):
    assert typ == "OK", data
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert m, data
    return int(m.group(1)), int(m.group(2))


def count_mid(testbed, side, user, folder, mid):
    """How many copies of Message-ID mid the server has in folder."""
    c = testbed.imaps(side, *user)
    typ, _ = c.select(wire(folder), readonly=True)
    assert typ == "OK", folder
    found = c.search(None, "HEADER", "Message-ID", mid)[1][0].split()
    c.logout()
    return len(found)


def folder_count(testbed, side, user, folder):
    c = testbed.imaps(side, *user)
    typ, data = c.select(wire(folder), readonly=True)
    c.logout()
    return int(data[0]) if typ == "OK" else None


def fetch_body(c, vuid):
    typ, data = c.uid("FETCH", str(vuid), "(BODY.PEEK[])")
    assert typ == "OK", data
    for item in data:
        if isinstance(item, tuple):
            return item[1]
    raise AssertionError(f"no body for {vuid}: {data}")


def test_reply_flow_append_to_sent_and_drafts(testbed, imapmerge, user):
    """Thunderbird's reply: the Sent copy and draft versions go to the new
    server only, and the APPENDUID vuid fetches them back unchanged."""
    name, _ = user
    legacy_sent = tb.NEW_TO_LEGACY["Sent Items"]
    before = folder_count(testbed, "legacy", user, legacy_sent)
    c = login(testbed, imapmerge, user)
    mid, data = message(name, "Re: the budget")
    uv, vuid = appenduid(*c.append(wire("Sent Items"), "(\\Seen)", None,
                                   data))
    assert count_mid(testbed, "new", user, "Sent Items", mid) == 1
    assert folder_count(testbed, "legacy", user, legacy_sent) == before
    typ, sel = c.select(wire("Sent Items"))
    assert typ == "OK"
    assert fetch_body(c, vuid) == data
    typ, st = c.status(wire("Sent Items"), "(UIDVALIDITY)")
    assert f"UIDVALIDITY {uv}".encode() in st[0]
    flags = c.uid("FETCH", str(vuid), "(FLAGS)")[1][0]
    assert b"\\Seen" in flags

    # Drafts: a new version is appended, the older one deleted.
    mid1, d1 = message(name, "draft", b"first version\r\n")
    _, v1 = appenduid(*c.append(wire("Drafts"), "(\\Draft \\Seen)", None, d1))
    mid2, d2 = message(name, "draft", b"second version\r\n")
    _, v2 = appenduid(*c.append(wire("Drafts"), "(\\Draft \\Seen)", None, d2))
    assert v2 > v1
    c.select(wire("Drafts"))
    assert c.uid("STORE", str(v1), "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    assert fetch_body(c, v2) == d2
    assert count_mid(testbed, "new", user, "Drafts", mid1) == 0
    assert count_mid(testbed, "new", user, "Drafts", mid2) == 1
    assert folder_count(testbed, "legacy", user, "Drafts") == 0
    c.logout()


def test_append_to_selected_folder_announces_it(testbed, imapmerge, user):
    name, _ = user
    c = login(testbed, imapmerge, user)
    typ, data = c.select("INBOX")
    n = int(data[0])
    mid, msg = message(name, "to myself")
    uv, vuid = appenduid(*c.append("INBOX", None, None, msg))
    assert c.response("EXISTS")[1][-1] == str(n + 1).encode()
    assert fetch_body(c, vuid) == msg
    c.logout()


def rss_watch(im):
    """Samples imapmerge's resident memory until stopped; returns the
    sampler and a dict with the peak."""
    peak = {"kb": im.rss_kb(), "stop": False}

    def run():
        while not peak["stop"]:
            peak["kb"] = max(peak["kb"], im.rss_kb())
            time.sleep(0.02)
    t = threading.Thread(target=run)
    t.start()
    return t, peak


def big_message(name, size):
    mid = f"<{uuid.uuid4().hex}@example.ac.jp>"
    head = (f"From: {name}@example.ac.jp\r\nTo: x@example.ac.jp\r\n"
            f"Subject: big\r\nMessage-ID: {mid}\r\n\r\n").encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return mid, head + body[:size - len(head)]


def raw_append_literal_plus(testbed, port, user, folder, data):
    """APPEND with a non-synchronising literal ({n+}, RFC 7888)."""
    raw = socket.create_connection(("localhost", port), timeout=120)
    s = testbed.ctx().wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"a LOGIN {user[0]} {user[1]}\r\n".encode())
    while not f.readline().startswith(b"a "):
        pass
    s.sendall(f"b APPEND {wire(folder)} () {{{len(data)}+}}\r\n".encode())
    view = memoryview(data)
    for i in range(0, len(data), 1 << 20):
        s.sendall(view[i:i + (1 << 20)])
    s.sendall(b"\r\n")
    while True:
        line = f.readline()
        assert line, "connection closed"
        if line.startswith(b"b "):
            break
    s.sendall(b"c LOGOUT\r\n")
    s.close()
    return line


@pytest.mark.parametrize("mode", ["sync", "literal+"])
def test_big_append_streams(testbed, imapmerge, user, mode):
    """30 MB through APPEND: imapmerge never holds the message."""
    name, _ = user
    mid, data = big_message(name, 30 << 20)
    c = login(testbed, imapmerge, user)
    c.select("INBOX")       # warm the session and the view first
    c.logout()
    t, peak = rss_watch(imapmerge)
    base = imapmerge.rss_kb()
    try:
        if mode == "sync":
            c = login(testbed, imapmerge, user)
            typ, resp = c.append("INBOX", None, None, data)
            c.logout()
        else:
            line = raw_append_literal_plus(testbed, imapmerge.imaps_port,
                                           user, "INBOX", data)
            typ, resp = line.split()[1].decode(), [line]
    finally:
        peak["stop"] = True
        t.join()
    assert typ == "OK", resp
    assert b"APPENDUID" in resp[0]
    grew = peak["kb"] - base
    assert grew < 4096, f"imapmerge grew by {grew} kB during a 30 MB APPEND"
    assert count_mid(testbed, "new", user, "INBOX", mid) == 1
    nc = testbed.imaps("new", *user)
    nc.select("INBOX", readonly=True)
    num = nc.search(None, "HEADER", "Message-ID", mid)[1][0].split()[0]
    got = nc.fetch(num, "(RFC822.SIZE)")[1][0]
    nc.logout()
    assert f"RFC822.SIZE {len(data)}".encode() in got


def test_append_too_big_and_bad_input(testbed, imapmerge, user):
    c = login(testbed, imapmerge, user)
    # Over the limit: refused before a byte is sent.
    tag = c._new_tag().decode()
    c.send(f"{tag} APPEND INBOX {{{40 << 20}}}\r\n".encode())
    line = c.readline()
    assert line.startswith(f"{tag} NO [TOOBIG]".encode()), line
    # No such folder: TRYCREATE, and the session goes on.
    typ, data = c.append(wire("No/Such/Folder"), None, None, b"x\r\n\r\ny\r\n")
    assert typ == "NO" and b"TRYCREATE" in data[0], data
    # A bad flag and a bad date.
    with pytest.raises(imaplib.IMAP4.error):
        c.append("INBOX", "(\\Bogus)", None, b"x\r\n\r\ny\r\n")
    tag = c._new_tag().decode()
    c.send(f'{tag} APPEND INBOX "yesterday" {{3}}\r\n'.encode())
    assert c.readline().startswith(b"+")   # a small message comes whole
    c.send(b"abc\r\n")
    line = c.readline()
    assert line.startswith(f"{tag} BAD".encode()), line
    assert c.noop()[0] == "OK"
    # A streamed message to no folder: refused at once when the client
    # waits for "+", swallowed then refused when it does not ({n+}).
    tag = c._new_tag().decode()
    c.send(f"{tag} APPEND {wire('No/Such')} {{{200000}}}\r\n".encode())
    line = c.readline()
    assert line.startswith(f"{tag} NO [TRYCREATE]".encode()), line
    tag = c._new_tag().decode()
    c.send(f"{tag} APPEND {wire('No/Such')} {{{200000}+}}\r\n".encode()
           + b"x" * 200000 + b"\r\n")
    line = c.readline()
    assert line.startswith(f"{tag} NO [TRYCREATE]".encode()), line
    # Two messages in one APPEND (MULTIAPPEND is not offered).
    tag = c._new_tag().decode()
    c.send(f"{tag} APPEND INBOX {{3+}}\r\nabc {{3+}}\r\ndef\r\n".encode())
    line = c.readline()
    assert line.startswith(f"{tag} BAD".encode()), line
    assert c.noop()[0] == "OK"
    c.logout()


def test_client_gone_mid_append_leaves_nothing(testbed, imapmerge, user):
    name, _ = user
    before = folder_count(testbed, "new", user, "INBOX")
    mid, data = big_message(name, 10 << 20)
    raw = socket.create_connection(("localhost", imapmerge.imaps_port),
                                   timeout=60)
    s = testbed.ctx().wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"a LOGIN {user[0]} {user[1]}\r\n".encode())
    while not f.readline().startswith(b"a "):
        pass
    s.sendall(f"b APPEND INBOX {{{len(data)}+}}\r\n".encode())
    s.sendall(data[:5 << 20])
    time.sleep(0.5)
    s.close()
    time.sleep(1)
    assert folder_count(testbed, "new", user, "INBOX") == before
    assert count_mid(testbed, "new", user, "INBOX", mid) == 0
    # The next session appends the same message whole.
    c = login(testbed, imapmerge, user)
    appenduid(*c.append("INBOX", None, None, data))
    c.logout()
    assert count_mid(testbed, "new", user, "INBOX", mid) == 1
    assert imapmerge.alive()


def test_append_creates_folder_on_new(testbed, imapmerge, user):
    """A folder only the legacy server has gets its new part on APPEND."""
    name, _ = user
    tb.deliver(testbed.dir, "legacy", name, "Projects",
               message(name, "old project mail")[1])
    c = login(testbed, imapmerge, user)
    mid, data = message(name, "new project mail")
    uv, vuid = appenduid(*c.append(wire("Projects"), None, None, data))
    assert count_mid(testbed, "new", user, "Projects", mid) == 1
    typ, sel = c.select(wire("Projects"))
    assert typ == "OK" and int(sel[0]) == 2
    assert fetch_body(c, vuid) == data
    c.logout()


def test_sent_copy_absorbed_after_smtp(testbed, imapmerge, user):
    """Sent through imapmerge's SMTP, then appended to Sent by the client:
    one copy, the server's own, and the client gets its vuid."""
    name, _ = user
    mid, data = message(name, "sent through imapmerge")
    submit(testbed, int(testbed.IMAPMERGE_SUBMISSION_PORT), user,
           f"{name}@example.ac.jp", f"{name}@example.ac.jp", data)
    c = login(testbed, imapmerge, user)
    uv, vuid = appenduid(*c.append(wire("Sent Items"), "(\\Seen)", None,
                                   data))
    assert count_mid(testbed, "new", user, "Sent Items", mid) == 1
    c.select(wire("Sent Items"))
    body = fetch_body(c, vuid)
    assert f"Message-ID: {mid}".encode() in body
    # Without a relay before it, the same kind of APPEND uploads.
    mid2, data2 = message(name, "written elsewhere")
    uv2, vuid2 = appenduid(*c.append(wire("Sent Items"), "(\\Seen)", None,
                                     data2))
    assert count_mid(testbed, "new", user, "Sent Items", mid2) == 1
    assert fetch_body(c, vuid2) == data2
    c.logout()
    log = imapmerge.log()
    assert "event=sent-copy-absorbed" in log
