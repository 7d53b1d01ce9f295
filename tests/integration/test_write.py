"""Writes through imapmerge land on the new server (issue: writes).

APPEND, Sent-copy absorption, COPY/MOVE, legacy-writes and local keywords,
checked on the test bed's two Dovecot servers directly; the copier plays
the migration.
"""

import imaplib
import os
import re
import socket
import threading
import time
import uuid

import pytest

import tb
from proxy import SANITIZED
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


def raw_login(testbed, port, user):
    """A logged-in raw TLS connection (socket, its reader)."""
    raw = socket.create_connection(("localhost", port), timeout=120)
    s = testbed.ctx().wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"a LOGIN {user[0]} {user[1]}\r\n".encode())
    while not f.readline().startswith(b"a "):
        pass
    return s, f


def raw_append_literal_plus(testbed, port, user, folder, data):
    """APPEND with a non-synchronising literal ({n+}, RFC 7888)."""
    s, f = raw_login(testbed, port, user)
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
    # ASan keeps freed memory in quarantine: the figure means nothing there.
    if not SANITIZED:
        assert grew < 4096, \
            f"imapmerge grew by {grew} kB during a 30 MB APPEND"
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
    # A small message is refused before "+" as well: the client never
    # sends it (Dovecot does the same).
    c.send(f'{tag} APPEND INBOX "yesterday" {{3}}\r\n'.encode())
    line = c.readline()
    assert line.startswith(f"{tag} BAD".encode()), line
    assert c.noop()[0] == "OK"
    # ... and one that is fine gets "+" and lands.
    tag = c._new_tag().decode()
    c.send(f'{tag} APPEND INBOX (\\Seen) {{14}}\r\n'.encode())
    assert c.readline().startswith(b"+")
    c.send(b"Subject: x\r\n\r\n\r\n")
    line = c.readline()
    assert line.startswith(f"{tag} OK [APPENDUID ".encode()), line
    # Empty: nothing to save, said before "+".
    tag = c._new_tag().decode()
    c.send(f"{tag} APPEND INBOX {{0}}\r\n".encode())
    line = c.readline()
    assert line.startswith(f"{tag} NO ".encode()), line
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
    s, f = raw_login(testbed, imapmerge.imaps_port, user)
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
    # Sent as a mailing-list address, through the legacy server, which
    # files nothing: the APPEND uploads without waiting for a copy.
    mid3, data3 = message(name, "to the list")
    data3 = data3.replace(f"From: {name}@example.ac.jp".encode(),
                          f"From: {name}@ml.example.ac.jp".encode())
    submit(testbed, int(testbed.IMAPMERGE_SUBMISSION_PORT), user,
           f"{name}@ml.example.ac.jp", f"{name}@example.ac.jp", data3)
    uv3, vuid3 = appenduid(*c.append(wire("Sent Items"), "(\\Seen)", None,
                                     data3))
    assert count_mid(testbed, "new", user, "Sent Items", mid3) == 1
    assert fetch_body(c, vuid3) == data3
    c.logout()
    log = imapmerge.log()
    mine = [l for l in log.splitlines() if f"user={name} " in l]
    assert sum("event=sent-copy-absorbed" in l for l in mine) == 1
    assert sum("event=sent-copy-wait" in l for l in mine) == 1


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


def internaldate(testbed, side, user, folder, mid):
    c = testbed.imaps(side, *user)
    c.select(wire(folder), readonly=True)
    num = c.search(None, "HEADER", "Message-ID", mid)[1][0].split()[0]
    data = c.fetch(num.decode(), "(INTERNALDATE)")[1][0]
    c.logout()
    return re.search(rb'INTERNALDATE "([^"]*)"', data).group(1)


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
    # A legacy-only one kept its internal date.
    assert internaldate(testbed, "new", user, "Archive", seeded[-1]) == \
        internaldate(testbed, "legacy", user, "INBOX", seeded[-1])
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


# ------------------------------------------------- legacy-writes, keywords

def variant(testbed, user, tag, setting):
    from proxy import Imapmerge, variant_conf
    conf, imap, imaps = variant_conf(
        testbed, f"{tag}-{user[0]}.conf",
        replace=[("poll-interval 2s", "poll-interval 2s\n" + setting)])
    log = os.path.join(testbed.dir, f"imapmerge-{tag}-{user[0]}.log")
    return Imapmerge(conf, log, imap, imaps)


def server_flags(testbed, side, user, mid, folder="INBOX"):
    c = testbed.imaps(side, *user)
    c.select(wire(folder), readonly=True)
    num = c.search(None, "HEADER", "Message-ID", mid)[1][0].split()
    assert num, mid
    data = c.fetch(num[0].decode(), "(FLAGS)")[1][0]
    c.logout()
    return re.search(rb"FLAGS \(([^)]*)\)", data).group(1).decode().split()


def flags_of(c, vuid):
    data = c.uid("FETCH", str(vuid), "(FLAGS)")[1][0]
    return re.search(rb"FLAGS \(([^)]*)\)", data).group(1).decode().split()


def test_legacy_writes_none_replays_flags(testbed, user):
    """Acceptance: with legacy-writes none, \\Flagged on a legacy-only
    message leaves the legacy server alone; the new copy the migration
    makes gets it."""
    name, password = user
    testbed.seed(name, count=5, migrated=0, seed_value=31)
    im = variant(testbed, user, "lwnone", "legacy-writes none").start()
    try:
        c = login(testbed, im, user)
        c.select("INBOX")
        vuids = sorted(mids(c))
        by_mid = mids(c)
        target = vuids[1]
        mid = by_mid[target]
        typ, data = c.uid("STORE", str(target), "+FLAGS", "(\\Flagged)")
        assert typ == "OK", data
        assert "\\Flagged" in flags_of(c, target)
        assert "\\Flagged" not in server_flags(testbed, "legacy", user, mid)
        # Reading a message does not mark it read on the legacy server.
        unread = next(v for v in vuids if "\\Seen" not in flags_of(c, v))
        unread_mid = by_mid[unread]
        typ, data = c.uid("FETCH", str(unread), "(BODY[])")
        assert typ == "OK" and b"Message-ID" in data[0][1]
        assert "\\Seen" in flags_of(c, unread)
        assert "\\Seen" not in server_flags(testbed, "legacy", user,
                                             unread_mid)
        c.logout()
        # The migration copies the message as the legacy server has it.
        assert testbed.copy(name, password) == 5
        assert "\\Flagged" not in server_flags(testbed, "new", user, mid)
        c = login(testbed, im, user)
        c.select("INBOX")                 # pairs, and tells the new copy
        deadline = time.monotonic() + 10
        while "\\Flagged" not in server_flags(testbed, "new", user, mid):
            assert time.monotonic() < deadline, "flag not replayed"
            c.noop()
            time.sleep(0.2)
        assert "\\Flagged" in flags_of(c, target)
        assert "\\Flagged" not in server_flags(testbed, "legacy", user, mid)
        deadline = time.monotonic() + 10
        while "\\Seen" not in server_flags(testbed, "new", user, unread_mid):
            assert time.monotonic() < deadline, "\\Seen not replayed"
            c.noop()
            time.sleep(0.2)
        # Only that one.
        for other in vuids:
            if other != target:
                assert "\\Flagged" not in flags_of(c, other)
        c.logout()
        assert "event=flags-replayed" in im.log()
    finally:
        im.stop()


def test_legacy_writes_none_reading_a_migrated_message(testbed, user):
    """With legacy-writes none, reading a message that both servers hold
    (served from the new copy) marked it read on the legacy server too,
    as imapmerge keeps the two copies' \\Seen together.  Nothing may
    change there: the new copy and the client see \\Seen, the legacy
    copy does not, whatever item reads the body."""
    name, _ = user
    testbed.seed(name, count=6, migrated=6, seed_value=2210, seen_every=99)
    im = variant(testbed, user, "lwnone2", "legacy-writes none").start()
    try:
        c = login(testbed, im, user)
        c.select("INBOX")
        by_mid = mids(c)
        vuids = sorted(by_mid)
        # (The first message was seeded read.)
        for vuid, item in zip(vuids[1:], ("BODY[]", "RFC822", "RFC822.TEXT",
                                           "BODY[TEXT]", "BINARY[1]")):
            assert "\\Seen" not in flags_of(c, vuid), item
            typ, data = c.uid("FETCH", str(vuid), f"({item})")
            assert typ == "OK", (item, data)
            assert "\\Seen" in flags_of(c, vuid), item
            mid = by_mid[vuid]
            assert "\\Seen" in server_flags(testbed, "new", user, mid), item
            assert "\\Seen" not in server_flags(testbed, "legacy", user,
                                                 mid), item
        # A later session sees them read (the view keeps it).
        c.logout()
        c = login(testbed, im, user)
        c.select("INBOX")
        for vuid in vuids[1:]:
            assert "\\Seen" in flags_of(c, vuid), vuid
        c.logout()
    finally:
        im.stop()


def test_local_keywords(testbed, user):
    """Acceptance: with local keywords forced, $label1 is kept by
    imapmerge across sessions and restarts, and SEARCH finds it."""
    name, _ = user
    testbed.seed(name, count=4, migrated=2, seed_value=32)
    im = variant(testbed, user, "localkw", "local-keywords yes").start()
    try:
        c = login(testbed, im, user)
        c.select("INBOX")
        by_mid = mids(c)
        vuids = sorted(by_mid)
        paired, legacy_only = vuids[0], vuids[-1]
        for v in (paired, legacy_only):
            typ, data = c.uid("STORE", str(v), "+FLAGS", "($label1)")
            assert typ == "OK", data
            assert "$label1" in flags_of(c, v)
        c.logout()
        for v in (paired, legacy_only):
            for side in ("legacy", "new"):
                try:
                    fl = server_flags(testbed, side, user, by_mid[v])
                except AssertionError:
                    continue            # no copy on that side
                assert "$label1" not in fl, (side, fl)

        def check():
            c = login(testbed, im, user)
            c.select("INBOX")
            for v in (paired, legacy_only):
                assert "$label1" in flags_of(c, v)
            found = c.uid("SEARCH", "KEYWORD", "$label1")[1][0].split()
            assert sorted(int(x) for x in found) == [paired, legacy_only]
            found = c.uid("SEARCH", "UNKEYWORD", "$label1")[1][0].split()
            assert sorted(int(x) for x in found) == vuids[1:-1]
            c.logout()
        check()
        im.stop()
        im.start()
        check()
        # Removing it works the same way.
        c = login(testbed, im, user)
        c.select("INBOX")
        c.uid("STORE", str(paired), "-FLAGS", "($label1)")
        assert "$label1" not in flags_of(c, paired)
        c.logout()
    finally:
        im.stop()


# ------------------------------------------------------- two-way clients

def test_mbsync_pushes_local_changes(testbed, imapmerge, user):
    """Acceptance: mbsync with Sync All and Create Far: a new message, a
    flag, a deletion and a new folder made locally reach the new server
    through imapmerge; the next sync changes nothing."""
    from test_clients import mbsync_rc, run, maildir_files, message_ids
    name, password = user
    ids = testbed.seed(name, count=10, migrated=5, seed_value=41)
    d, rc = mbsync_rc(testbed, imapmerge, user, "mbsync-rw-",
                      "SubFolders Verbatim\n",
                      "Far :far:\nNear :near:\nPatterns INBOX Offline\n"
                      "Sync All\nCreate Both\nExpunge Both\nSyncState *\n")
    run(["mbsync", "-c", rc, "c"])
    inbox = os.path.join(d, "mail", "INBOX")
    files = maildir_files(inbox)
    assert sorted(message_ids(files)) == sorted(i.encode() for i in ids)
    by_id = dict(zip(message_ids(files), files))
    # A migrated message gets \Flagged, another one is deleted.
    flag_id, del_id = ids[0].encode(), ids[1].encode()
    f = by_id[flag_id]
    base, _, fl = os.path.basename(f).partition(":2,")
    os.rename(f, os.path.join(os.path.dirname(f), base + ":2," +
                              "".join(sorted(fl + "F"))))
    f = by_id[del_id]
    base, _, fl = os.path.basename(f).partition(":2,")
    os.rename(f, os.path.join(os.path.dirname(f), base + ":2," +
                              "".join(sorted(fl + "T"))))
    # A new message in INBOX, and a new folder with one.
    new_mid, data = message(name, "written offline")
    with open(os.path.join(inbox, "new", "1700000000.offline.host"),
              "wb") as fh:
        fh.write(data)
    # (Not "Notes": that is one of Exchange's folders imapmerge hides.)
    notes = os.path.join(d, "mail", "Offline")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(notes, sub))
    note_mid, note = message(name, "a note")
    with open(os.path.join(notes, "cur", "1700000001.note.host:2,S"),
              "wb") as fh:
        fh.write(note)
    run(["mbsync", "-c", rc, "c"])
    # On the new server.
    assert count_mid(testbed, "new", user, "INBOX", new_mid) == 1
    assert "\\Flagged" in server_flags(testbed, "new", user, ids[0])
    assert count_mid(testbed, "new", user, "INBOX", ids[1]) == 0
    assert count_mid(testbed, "new", user, "Offline", note_mid) == 1
    assert folder_count(testbed, "legacy", user, "Offline") is None
    # And through imapmerge.
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    seen = sorted(m for m in mids(c).values())
    assert seen == sorted([i for i in ids if i != ids[1]] + [new_mid])
    c.logout()
    # The next sync is a no-op: same files, same server.
    before = sorted(maildir_files(os.path.join(d, "mail")))
    count = folder_count(testbed, "new", user, "INBOX")
    run(["mbsync", "-c", rc, "c"])
    assert sorted(maildir_files(os.path.join(d, "mail"))) == before
    assert folder_count(testbed, "new", user, "INBOX") == count


def test_offlineimap_pushes_local_changes(testbed, imapmerge, user):
    from test_clients import offlineimap_rc, run, maildir_files, message_ids
    name, password = user
    ids = testbed.seed(name, count=8, migrated=4, seed_value=42)
    d, rc = offlineimap_rc(testbed, imapmerge, user,
                           "folderfilter = lambda f: f == 'INBOX'\n")
    run(["offlineimap", "-c", rc, "-o", "-u", "basic"])
    inbox = os.path.join(d, "mail", "INBOX")
    files = maildir_files(inbox)
    by_id = dict(zip(message_ids(files), files))
    f = by_id[ids[0].encode()]
    base, _, fl = os.path.basename(f).partition(":2,")
    os.rename(f, os.path.join(os.path.dirname(f), base + ":2," +
                              "".join(sorted(fl + "F"))))
    os.unlink(by_id[ids[1].encode()])
    new_mid, data = message(name, "offlineimap wrote this")
    with open(os.path.join(inbox, "new", "1700000002.oi.host"), "wb") as fh:
        fh.write(data)
    run(["offlineimap", "-c", rc, "-o", "-u", "basic"])
    assert count_mid(testbed, "new", user, "INBOX", new_mid) == 1
    assert "\\Flagged" in server_flags(testbed, "new", user, ids[0])
    assert count_mid(testbed, "new", user, "INBOX", ids[1]) == 0
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    assert sorted(mids(c).values()) == \
        sorted([i for i in ids if i != ids[1]] + [new_mid])
    c.logout()
    before = sorted(maildir_files(inbox))
    count = folder_count(testbed, "new", user, "INBOX")
    run(["offlineimap", "-c", rc, "-o", "-u", "basic"])
    assert sorted(maildir_files(inbox)) == before
    assert folder_count(testbed, "new", user, "INBOX") == count


def test_tombstone_action_expunge(testbed, user):
    """A legacy-only message deleted through imapmerge, then copied by the
    migration: hidden always; with tombstone-action expunge also removed
    from the new server."""
    name, password = user
    ids = testbed.seed(name, count=3, migrated=0, seed_value=43)
    im = variant(testbed, user, "tombexp", "tombstone-action expunge").start()
    try:
        c = login(testbed, im, user)
        c.select("INBOX")
        by_mid = {v: k for k, v in mids(c).items()}
        c.uid("STORE", str(by_mid[ids[0]]), "+FLAGS", "(\\Deleted)")
        assert c.expunge()[0] == "OK"
        assert testbed.copy(name, password) == 3
        assert count_mid(testbed, "new", user, "INBOX", ids[0]) == 1
        deadline = time.monotonic() + 10
        while count_mid(testbed, "new", user, "INBOX", ids[0]) != 0:
            assert time.monotonic() < deadline, "re-copy not expunged"
            c.noop()
            time.sleep(0.2)
        assert sorted(mids(c).values()) == sorted(ids[1:])
        assert count_mid(testbed, "legacy", user, "INBOX", ids[0]) == 1
        c.logout()
        assert "event=recopy-expunged" in im.log()
    finally:
        im.stop()
