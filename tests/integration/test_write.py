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


# ------------------------------------------------------------ COPY and MOVE

def mids(c):
    """vuid -> Message-ID of the selected folder."""
    typ, data = c.uid("FETCH", "1:*",
                      "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            m = re.search(rb"<[^>]*>", item[1])
            out[uid] = m.group(0).decode() if m else None
    return out


def uid_cmd(c, *args):
    """UID COPY/MOVE with the tagged answer's text (imaplib's uid() keeps
    only untagged data)."""
    return c._simple_command("UID", *args)


def copyuid(data):
    m = re.search(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", data)
    assert m, data

    def expand(s):
        out = []
        for part in s.decode().split(","):
            lo, _, hi = part.partition(":")
            out += list(range(int(lo), int(hi or lo) + 1))
        return out
    return int(m.group(1)), expand(m.group(2)), expand(m.group(3))


def test_copy_both_kinds_with_copyuid(testbed, imapmerge, user):
    """Messages on the new server are copied there; legacy-only ones are
    read from legacy and appended to new, flags and date kept."""
    name, _ = user
    seeded = testbed.seed(name, count=12, migrated=5, seed_value=21)
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    before = mids(c)
    flags_before = {int(re.search(rb"UID (\d+)", x).group(1)):
                    re.search(rb"FLAGS \(([^)]*)\)", x).group(1)
                    for x in c.uid("FETCH", "1:*", "(FLAGS)")[1]}
    typ, data = uid_cmd(c, "COPY", "1:*", wire("Archive"))
    assert typ == "OK", data
    uv, src, dst = copyuid(data[0])
    assert sorted(src) == sorted(before)
    c.select(wire("Archive"))
    after = mids(c)
    assert sorted(after.values()) == sorted(before.values())
    for s_uid, d_uid in zip(src, dst):
        assert after[d_uid] == before[s_uid]
    for item in c.uid("FETCH", "1:*", "(FLAGS)")[1]:
        d_uid = int(re.search(rb"UID (\d+)", item).group(1))
        s_uid = src[dst.index(d_uid)]
        assert re.search(rb"FLAGS \(([^)]*)\)", item).group(1) == \
            flags_before[s_uid]
    # On the new server, once each; the legacy server has no Archive.
    for mid in seeded[:3] + seeded[-3:]:
        assert count_mid(testbed, "new", user, "Archive", mid) == 1
    # The source is unchanged.
    c.select("INBOX")
    assert mids(c) == before
    c.logout()


def test_move_legacy_only_to_new_folder(testbed, imapmerge, user):
    """Acceptance: MOVE 100 legacy-only messages from INBOX to Archive/2019;
    the legacy server is untouched and the migration does not bring them
    back into INBOX."""
    name, _ = user
    seeded = testbed.seed(name, count=100, migrated=0, seed_value=22)
    legacy = testbed.imaps("legacy", *user)
    legacy.select("INBOX", readonly=True)
    legacy_before = [x.replace(b" \\Recent", b"").replace(b"\\Recent", b"")
                     for x in legacy.fetch("1:*", "(FLAGS)")[1]]
    legacy.logout()
    c = login(testbed, imapmerge, user)
    # Archive/2019 is a folder only the legacy server has (test bed):
    # the move creates its part on the new server.
    assert folder_count(testbed, "new", user, "Archive/2019") is None
    typ, data = c.select("INBOX")
    assert int(data[0]) == 100
    typ, data = uid_cmd(c, "MOVE", "1:*", wire("Archive/2019"))
    assert typ == "OK", data
    assert int(c.select("INBOX")[1][0]) == 0
    c.select(wire("Archive/2019"))
    moved = mids(c)
    assert sorted(moved.values()) == sorted(seeded)
    for mid in seeded[:5]:
        assert count_mid(testbed, "new", user, "Archive/2019", mid) == 1
    legacy = testbed.imaps("legacy", *user)
    legacy.select("INBOX", readonly=True)
    assert [x.replace(b" \\Recent", b"").replace(b"\\Recent", b"")
            for x in legacy.fetch("1:*", "(FLAGS)")[1]] == legacy_before
    legacy.logout()
    # The migration copies legacy INBOX to new INBOX: still not in INBOX.
    assert testbed.copy(name, user[1]) >= 100
    assert count_mid(testbed, "new", user, "INBOX", seeded[0]) == 1
    assert int(c.select("INBOX")[1][0]) == 0
    c.select(wire("Archive/2019"))
    assert sorted(mids(c).values()) == sorted(seeded)
    c.logout()


def test_move_survives_kill(testbed, user, tmp_path):
    """Acceptance: kill -9 in the middle of a 500-message MOVE; after a
    restart every message is in exactly one of the two folders."""
    import os
    import signal
    from proxy import Imapmerge, variant_conf
    name, _ = user
    seeded = testbed.seed(name, count=500, migrated=200, seed_value=23)
    conf, imap, imaps = variant_conf(testbed, f"kill-{name}.conf")
    log = os.path.join(testbed.dir, f"imapmerge-kill-{name}.log")
    im = Imapmerge(conf, log, imap, imaps).start()
    try:
        c = login(testbed, im, user)
        c.create(wire("Moved"))
        c.select("INBOX")
        before = mids(c)
        assert len(before) == 500
        tag = c._new_tag().decode()
        c.send(f"{tag} UID MOVE 1:* {wire('Moved')}\r\n".encode())
        # Wait until the server-side part is done and the legacy-only
        # messages are on their way, then kill.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = folder_count(testbed, "new", user, "Moved") or 0
            if n >= 300:
                break
            time.sleep(0.05)
        assert n >= 300, n
        im.proc.send_signal(signal.SIGKILL)
        im.proc.wait(5)
        im.stop()
        partial = folder_count(testbed, "new", user, "Moved")
        assert partial < 500, "the move finished before the kill"
        im = Imapmerge(conf, log, imap, imaps).start()
        c = login(testbed, im, user)
        c.select(wire("Moved"))
        moved = mids(c)
        c.select("INBOX")
        left = mids(c)
        # Every message exactly once, in one folder or the other.
        ids = sorted(list(moved.values()) + list(left.values()))
        assert ids == sorted(seeded), (len(moved), len(left))
        # What stayed in INBOX kept its vuid.
        for vuid, mid in left.items():
            assert before[vuid] == mid
        assert len(set(moved)) == len(moved)
        # Everything is on a server: the legacy INBOX is untouched.
        legacy = testbed.imaps("legacy", *user)
        assert int(legacy.select("INBOX", readonly=True)[1][0]) == 500
        legacy.logout()
        c.logout()
    finally:
        im.stop()
