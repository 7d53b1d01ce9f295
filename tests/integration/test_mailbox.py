"""Merged mailboxes through imapmerge (issue: merged mailboxes).

The test bed's copier plays the migration.  A message's identity here is
what DESIGN §4 pairs on: its Message-ID, or the original one that Exchange
keeps in X-Microsoft-Original-Message-ID when it rewrites it.
"""

import imaplib
import os
import random
import re
import signal
import socket
import ssl
import time

import pytest

import tb
from proxy import SANITIZED, Imapmerge

HDR = "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID X-MICROSOFT-ORIGINAL-MESSAGE-ID SUBJECT DATE)])"


def login(testbed, imapmerge, user):
    c = imaplib.IMAP4_SSL("localhost", imapmerge.imaps_port,
                          ssl_context=testbed.ctx(), timeout=60)
    c.login(*user)
    return c


def identity(header):
    """The pairing identity of a header block."""
    orig = re.search(rb"X-Microsoft-Original-Message-ID:\s*(<[^>]*>)",
                     header, re.I)
    mid = re.search(rb"Message-ID:\s*(<[^>]*>)", header, re.I)
    if orig:
        return orig.group(1).decode()
    if mid:
        return mid.group(1).decode()
    subj = re.search(rb"Subject:\s*(.*)", header, re.I)
    return "subject:" + subj.group(1).decode().strip()


def uid_map(conn):
    """uid -> identity of the selected folder."""
    typ, data = conn.uid("FETCH", "1:*", HDR)
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            out[uid] = identity(item[1])
    return out


def new_only(testbed, name, folder, count, seed_value):
    """Mail that only the new server has (delivered after the switch)."""
    rng = random.Random(seed_value)
    ids = []
    for i in range(count):
        data, _, when, mid = tb.make_message(seed_value * 100000 + i, name,
                                             rng, folder=folder)
        tb.deliver(testbed.dir, "new", name, folder, data,
                   when=1700000000 + seed_value * 86400 + i * 60)
        ids.append(mid)
    return ids


def eventually(noop, seconds=10):
    """Calls noop() (a NOOP, and a look at what it brought) until it
    returns true.  A change made directly on a server shows at the first
    NOOP after the server told imapmerge of it: at once when imapmerge
    asks, up to Dovecot's 0.5 s later when the servers watch the folder in
    IDLE (backend-idle-after)."""
    deadline = time.monotonic() + seconds
    while not noop():
        assert time.monotonic() < deadline, "no news at NOOP"
        time.sleep(0.1)


def noop_brings(idler, line):
    """For eventually(): a NOOP on a raw connection that brings line."""
    return lambda: any(ln.strip() == line for ln in idler.cmd("w NOOP"))


def wire(folder):
    return '"' + tb.mutf7_encode(folder) + '"'


@pytest.mark.parametrize("folder,count,migrated,extra", [
    ("INBOX", 300, 100, 50),
    ("Sent Items", 40, 15, 10),
    ("Deleted Items", 30, 10, 5),
    ("Junk Email", 30, 10, 5),
])
def test_each_message_once(testbed, imapmerge, user, folder, count, migrated,
                           extra):
    name, _ = user
    seeded = testbed.seed(name, folder=folder, count=count, migrated=migrated,
                          no_message_id=5, exchange_ids=10, seed_value=7)
    fresh = new_only(testbed, name, folder, extra, seed_value=8)
    c = login(testbed, imapmerge, user)
    typ, data = c.select(wire(folder))
    assert typ == "OK", data
    assert int(data[0]) == count + extra
    ids = list(uid_map(c).values())
    assert len(ids) == count + extra
    assert len(set(ids)) == len(ids), "a message shows twice"
    keyed = {i for i in ids if not i.startswith("subject:")}
    assert keyed == {m for m in seeded[5:]} | set(fresh)
    c.logout()


class Idler:
    """A raw IMAP connection for IDLE, which imaplib lacks."""

    def __init__(self, testbed, port, user, folder="INBOX"):
        raw = socket.create_connection(("localhost", port), timeout=30)
        self.s = testbed.ctx().wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.readline()
        self.cmd(f"a LOGIN {user[0]} {user[1]}")
        self.cmd(f"b SELECT {wire(folder)}")

    def readline(self, timeout=30):
        """One line, or None when nothing complete came within timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, ssl.SSLError):
                return None
            assert chunk, "connection closed"
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def cmd(self, line):
        tag = line.split()[0]
        self.s.sendall(line.encode() + b"\r\n")
        lines = []
        while True:
            ln = self.readline()
            assert ln is not None, "no answer"
            lines.append(ln)
            if ln.startswith(tag.encode() + b" "):
                assert ln.split()[1] == b"OK", ln
                return lines

    def idle(self):
        self.s.sendall(b"i IDLE\r\n")
        assert self.readline().startswith(b"+")

    def collect(self, seconds, until=None):
        """Untagged lines that arrive within `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while True:
            ln = self.readline(deadline - time.monotonic())
            if ln is None:
                return got
            got.append(ln)
            if until and until(ln):
                return got

    def done(self):
        self.s.sendall(b"DONE\r\n")
        rest = []
        while True:
            ln = self.readline()
            assert ln is not None, "no answer to DONE"
            if ln.startswith(b"i "):
                assert ln.startswith(b"i OK"), ln
                return rest
            rest.append(ln)

    def close(self):
        try:
            self.s.settimeout(5)
            self.s.sendall(b"z LOGOUT\r\n")
        finally:
            self.s.close()


def test_migration_during_idle_is_invisible(testbed, imapmerge, user):
    name, password = user
    testbed.seed(name, count=60, migrated=20, seed_value=11)
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    before = uid_map(c)
    assert len(before) == 60
    idler = Idler(testbed, imapmerge.imaps_port, user)
    idler.idle()
    assert testbed.copy(name, password) == 40
    # Two poll intervals: imapmerge has looked at both servers since.
    seen = idler.collect(5)
    assert not [ln for ln in seen if b"EXPUNGE" in ln or b"EXISTS" in ln], \
        seen
    idler.done()
    idler.close()
    c.noop()
    after = uid_map(c)
    assert after == before, "a UID changed its message"
    # A migrated message is now served by its new copy.
    uid = max(before)
    typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
    body = next(x[1] for x in data if isinstance(x, tuple))
    assert body.startswith(tb.COPY_MARK)
    c.logout()


def test_new_mail_and_server_side_expunge_during_idle(testbed, imapmerge,
                                                      user):
    name, password = user
    testbed.seed(name, count=10, migrated=10, seed_value=12)
    fresh = new_only(testbed, name, "INBOX", 1, seed_value=13)
    idler = Idler(testbed, imapmerge.imaps_port, user)
    idler.idle()
    t0 = time.monotonic()
    new_only(testbed, name, "INBOX", 1, seed_value=14)
    seen = idler.collect(8, until=lambda ln: b"EXISTS" in ln)
    assert any(ln.strip() == b"* 12 EXISTS" for ln in seen), seen
    assert time.monotonic() - t0 < 2 + 3     # poll interval + margin
    # Gone from the new server directly: gone from the view.
    new = testbed.imaps("new", *user)
    new.select("INBOX")
    typ, data = new.search(None, "HEADER", "Message-ID", fresh[0])
    new.store(data[0].decode(), "+FLAGS", "\\Deleted")
    new.expunge()
    new.logout()
    seen = idler.collect(8, until=lambda ln: b"EXPUNGE" in ln)
    assert any(ln.strip() == b"* 11 EXPUNGE" for ln in seen), seen
    idler.done()
    idler.close()


def test_new_copy_deleted_on_server_leaves_view(testbed, imapmerge, user):
    name, _ = user
    ids = testbed.seed(name, count=5, migrated=5, seed_value=15)
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    assert len(uid_map(c)) == 5
    new = testbed.imaps("new", *user)
    new.select("INBOX")
    typ, data = new.search(None, "HEADER", "Message-ID", ids[2])
    new.store(data[0].decode(), "+FLAGS", "\\Deleted")
    new.expunge()
    new.logout()
    # At a NOOP, once the server has told (its IDLE may tell 0.5 s late).
    eventually(lambda: c.noop()[0] == "OK" and
               ids[2] not in set(uid_map(c).values()))
    left = set(uid_map(c).values())
    assert ids[2] not in left and len(left) == 4
    c.logout()


def test_uids_stable_across_sessions_restart_and_recreate(testbed, user):
    name, password = user
    from proxy import variant_conf
    testbed.seed(name, folder="Archive", count=20, migrated=8, seed_value=16)
    conf, imap, imaps = variant_conf(testbed, "imapmerge-restart.conf")
    im = Imapmerge(conf, f"{testbed.dir}/imapmerge-restart.log", imap, imaps)
    im.start()
    try:
        a = login(testbed, im, user)
        b = login(testbed, im, user)
        typ, d = a.select("Archive")
        uv = a.response("UIDVALIDITY")[1]
        b.select("Archive")
        first = uid_map(a)
        assert uid_map(b) == first
        a.logout()
        b.logout()
    finally:
        im.stop()
    im.start()
    try:
        a = login(testbed, im, user)
        a.select("Archive")
        assert a.response("UIDVALIDITY")[1] == uv
        assert uid_map(a) == first
        a.logout()
        # The folder is recreated on the new server: a new UIDVALIDITY
        # there, the same messages copied again.
        new = testbed.imaps("new", *user)
        new.delete("Archive")
        new.create("Archive")
        new.logout()
        testbed.copy(name, password, folders=["Archive"])
        a = login(testbed, im, user)
        a.select("Archive")
        assert a.response("UIDVALIDITY")[1] == uv
        assert uid_map(a) == first
        a.logout()
    finally:
        im.stop()


def direct_flags(testbed, user, side, mid, folder="INBOX"):
    """The flags of the message with Message-ID mid on one server."""
    c = testbed.imaps(side, *user)
    c.select(folder, readonly=True)
    typ, data = c.search(None, "HEADER", "Message-ID", mid)
    assert data[0], (side, mid)
    typ, data = c.fetch(data[0].split()[0].decode(), "(FLAGS)")
    c.logout()
    return set(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).split()) \
        - {b"\\Recent"}


def uid_of(conn, mid):
    for uid, ident in uid_map(conn).items():
        if ident == mid:
            return uid
    raise AssertionError(mid)


def test_store_and_read_reach_every_copy(testbed, imapmerge, user):
    name, _ = user
    ids = testbed.seed(name, count=4, migrated=4, seed_value=17,
                       seen_every=100)
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    typ, data = c.uid("STORE", str(uid_of(c, ids[1])), "+FLAGS",
                      r"(\Seen \Flagged)")
    assert typ == "OK" and b"\\Flagged" in data[0], data
    for side in ("legacy", "new"):
        assert {b"\\Seen", b"\\Flagged"} <= direct_flags(testbed, user, side,
                                                         ids[1]), side
    # A non-peek body fetch marks both copies read.
    assert not direct_flags(testbed, user, "legacy", ids[2])
    typ, data = c.uid("FETCH", str(uid_of(c, ids[2])), "(BODY[])")
    assert typ == "OK"
    for side in ("legacy", "new"):
        assert b"\\Seen" in direct_flags(testbed, user, side, ids[2]), side
    typ, data = c.uid("FETCH", str(uid_of(c, ids[2])), "(FLAGS)")
    assert b"\\Seen" in data[0]
    c.logout()


def test_expunged_legacy_only_never_returns(testbed, imapmerge, user):
    name, password = user
    ids = testbed.seed(name, count=6, migrated=2, seed_value=18)
    a = login(testbed, imapmerge, user)
    b = login(testbed, imapmerge, user)
    a.select("INBOX")
    b.select("INBOX")
    assert uid_map(a) == uid_map(b)
    victim = uid_of(a, ids[4])               # legacy-only
    seq = sorted(uid_map(b)).index(victim) + 1
    a.uid("STORE", str(victim), "+FLAGS", r"(\Deleted)")
    typ, data = a.expunge()
    assert typ == "OK" and data[0] is not None, data
    assert ids[4] not in uid_map(a).values()
    # The other session hears of it at its next NOOP, by its number.
    b.untagged_responses.pop("EXPUNGE", None)
    b.noop()
    assert b.untagged_responses.pop("EXPUNGE", []) == [str(seq).encode()]
    assert ids[4] not in uid_map(b).values()
    # The legacy server still has it: imapmerge never deletes there.
    legacy = testbed.imaps("legacy", *user)
    legacy.select("INBOX", readonly=True)
    assert legacy.search(None, "HEADER", "Message-ID", ids[4])[1][0]
    legacy.logout()
    # The migration copies it: still hidden, in both sessions.
    assert testbed.copy(name, password) == 4
    a.noop()
    b.noop()
    for c in (a, b):
        left = list(uid_map(c).values())
        assert ids[4] not in left and len(left) == 5
    a.logout()
    b.logout()


def direct_ids(testbed, user, side, program):
    c = testbed.imaps(side, *user)
    c.select("INBOX", readonly=True)
    typ, data = c.uid("SEARCH", *program)
    assert typ == "OK", (side, program, data)
    uids = data[0].decode().split()
    out = set()
    if uids:
        typ, data = c.uid("FETCH", ",".join(uids), HDR)
        out = {identity(x[1]) for x in data if isinstance(x, tuple)}
    c.logout()
    return out


SEARCHES = [
    ["FROM", "sender3@"],
    ["SUBJECT", "Weekly"],
    ["BODY", "Message 2000"],
    ["TEXT", "html"],
    ["UNSEEN"],
    ["FLAGGED"],
    ["NOT", "SEEN"],
    ["LARGER", "330"],
    ["SMALLER", "330"],
    ["HEADER", "To", "example.ac.jp"],
    ["SINCE", "16-Nov-2023"],
    ["BEFORE", "16-Nov-2023"],
    ["ON", "15-Nov-2023"],
    ["SENTSINCE", "16-Nov-2023"],
    ["OR", "FROM", "sender1@", "SUBJECT", "Lunch"],
    ["OR", "(UNSEEN", "FLAGGED)", "(NOT", "FROM", "sender2@)"],
    ["NOT", "(OR", "SEEN", "SUBJECT", "Invoice)"],
    ["SEEN", "SUBJECT", "Re:"],
]


def test_search_matches_merged_truth(testbed, imapmerge, user):
    name, _ = user
    testbed.seed(name, count=40, migrated=15, seed_value=23, exchange_ids=3,
                 size=300)
    new_only(testbed, name, "INBOX", 6, seed_value=24)
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    view = uid_map(c)
    uids = sorted(view)
    c.uid("STORE", ",".join(str(u) for u in uids[::4]), "+FLAGS",
          r"(\Flagged)")
    new = testbed.imaps("new", *user)
    new.select("INBOX", readonly=True)
    on_new = {identity(x[1]) for x in new.uid("FETCH", "1:*", HDR)[1]
              if isinstance(x, tuple)}
    new.logout()

    def truth(program):
        n = direct_ids(testbed, user, "new", program)
        legacy = direct_ids(testbed, user, "legacy", program)
        return n | {i for i in legacy if i not in on_new}

    def merged(program, use_uid=True):
        typ, data = (c.uid("SEARCH", *program) if use_uid
                     else c.search(None, *program))
        assert typ == "OK", (program, data)
        nums = [int(x) for x in data[0].split()]
        return {view[uids[n - 1]] if not use_uid else view[n] for n in nums}

    for program in SEARCHES:
        want = truth(program)
        assert merged(program) == want, program
        assert merged(program, use_uid=False) == want, program
    # UID and sequence sets are the view's own numbers.
    some = set(uids[3:12])
    want = {view[u] for u in some} & truth(["UNSEEN"])
    got = merged(["UID", f"{uids[3]}:{uids[11]}", "UNSEEN"])
    assert got == want
    got = merged(["4:12", "UNSEEN"], use_uid=False)
    assert got == want
    assert merged(["NOT", "UID", f"{uids[0]}:*"]) == set()
    # Non-ASCII text arrives as a literal; the legacy server gets a
    # synchronising one (it has no LITERAL+).
    c.literal = "会議".encode()
    typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")
    assert typ == "OK"
    got = {view[int(n)] for n in data[0].split()}
    want = set()
    for side in ("new", "legacy"):
        d = testbed.imaps(side, *user)
        d.select("INBOX", readonly=True)
        d.literal = "会議".encode()
        found = d.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT")[1][0].split()
        if found:
            ids = {identity(x[1]) for x in d.uid("FETCH", b",".join(
                found).decode(), HDR)[1] if isinstance(x, tuple)}
            want |= ids if side == "new" else ids - on_new
        d.logout()
    assert got == want and got
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        c.uid("SEARCH", "FROBNICATE")
    c.logout()


def test_big_bodies_stream_through(testbed, imapmerge, user):
    """Bodies of any size arrive byte for byte, from either server, and
    imapmerge does not hold a whole message to pass it on."""
    name, _ = user
    rng = random.Random(25)
    big, _, when, big_id = tb.make_message(2500001, name, rng,
                                           size=20 << 20)
    mid, _, _, mid_id = tb.make_message(2500002, name, rng, size=300000)
    tb.deliver(testbed.dir, "new", name, "INBOX", big, when=when)
    tb.deliver(testbed.dir, "legacy", name, "INBOX", mid, when=when + 60)
    testbed.seed(name, count=3, migrated=1, seed_value=26)
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    view = uid_map(c)
    before = imapmerge.rss_kb()
    uids = ",".join(str(u) for u in sorted(view))
    typ, data = c.uid("FETCH", uids, "(RFC822.SIZE BODY.PEEK[] FLAGS)")
    assert typ == "OK"
    grown = imapmerge.rss_kb() - before
    bodies = {identity(x[1]): x for x in data if isinstance(x, tuple)}
    assert bodies[big_id][1] == big
    assert bodies[mid_id][1] == mid
    assert b"RFC822.SIZE %d" % len(big) in bodies[big_id][0]
    assert len(bodies) == len(view)
    # Under AddressSanitizer freed buffers stay resident in its quarantine,
    # so the bound is checked on the normal build only.
    if not SANITIZED:
        assert grown < 8 << 10, f"imapmerge grew {grown} kB for a 20 MB body"
    # A partial fetch of the big one and a header fetch of all still work.
    typ, data = c.uid("FETCH", str(next(u for u, i in view.items()
                                        if i == big_id)),
                      "(BODY.PEEK[]<100.50000>)")
    assert data[0][1] == big[100:50100]
    c.logout()


def test_flags_changed_on_a_server_show(testbed, imapmerge, user):
    """Flags set directly on either server reach the client at NOOP (on
    the new side through CONDSTORE's CHANGEDSINCE), and no FETCH item the
    client did not ask for (MODSEQ) leaks through."""
    name, _ = user
    ids = testbed.seed(name, count=4, migrated=2, seed_value=27,
                       seen_every=100)
    c = login(testbed, imapmerge, user)
    c.select("INBOX")
    for side, mid in (("new", ids[0]), ("legacy", ids[3])):
        d = testbed.imaps(side, *user)
        d.select("INBOX")
        num = d.search(None, "HEADER", "Message-ID", mid)[1][0].decode()
        d.store(num, "+FLAGS", r"(\Flagged $Important)")
        d.logout()

    def flagged():
        return all(b"\\Flagged" in c.uid("FETCH", str(uid_of(c, mid)),
                                         "(FLAGS)")[1][0]
                   for mid in (ids[0], ids[3]))
    eventually(lambda: c.noop()[0] == "OK" and flagged())
    for mid in (ids[0], ids[3]):
        typ, data = c.uid("FETCH", str(uid_of(c, mid)),
                          "(FLAGS ENVELOPE)")
        assert b"\\Flagged" in data[0] and b"$Important" in data[0], data
        assert b"MODSEQ" not in data[0], data
    c.logout()


def test_bad_input_in_a_folder(testbed, imapmerge, user):
    """Malformed commands on a selected folder get BAD or NO, the session
    goes on, and the process neither dies nor grows."""
    name, _ = user
    testbed.seed(name, count=5, migrated=2, seed_value=28)
    raw = socket.create_connection(("localhost", imapmerge.imaps_port),
                                   timeout=30)
    s = testbed.ctx().wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()

    def cmd(line):
        tag = line.split(b" ")[0]
        s.sendall(line + b"\r\n")
        while True:
            ln = f.readline()
            assert ln, line
            if ln.startswith(tag + b" "):
                return ln

    assert cmd(b"a LOGIN %s %s" % (name.encode(), user[1].encode())) \
        .startswith(b"a OK")
    assert cmd(b"b SELECT NoSuchFolder").startswith(b"b NO [NONEXISTENT]")
    assert cmd(b"c SELECT INBOX").startswith(b"c OK")
    base = imapmerge.rss_kb()
    bad = [
        b"d FETCH 1:x (FLAGS)",
        b"d FETCH 0 (FLAGS)",
        b"d FETCH 1 (FOO)",
        b"d FETCH 1",
        b"d FETCH 1 (BODY[0])",
        b"d FETCH 1 ALL FAST",
        b"d STORE 1 +FLAGS (\\Foo)",
        b"d STORE 1 FROB (\\Seen)",
        b"d SEARCH FROBNICATE",
        b"d SEARCH OR SEEN",
        b"d SEARCH " + b"(" * 40 + b"SEEN" + b")" * 40,
        b"d SEARCH " + b" ".join([b"OR SEEN"] * 300) + b" SEEN",
        b"d SEARCH " + b" ".join([b"FROM x"] * 40),
        b"d SEARCH SINCE 31-Foo-2020",
        b"d UID FROBNICATE 1",
        b"d UID STORE",
        b"d STATUS INBOX (MESSAGES FROB)",
        b"d FETCH " + b"1," * 20000 + b"1 (FLAGS)",
    ]
    for line in bad:
        ans = cmd(line)
        assert ans.startswith(b"d BAD") or ans.startswith(b"d NO"), \
            (line[:60], ans)
    assert cmd(b"e NOOP").startswith(b"e OK")
    assert cmd(b"f EXAMINE INBOX").startswith(b"f OK [READ-ONLY]")
    assert cmd(b"g STORE 1 +FLAGS (\\Seen)").startswith(b"g NO [READ-ONLY]")
    assert cmd(b"h FETCH 1:* (UID FLAGS)").startswith(b"h OK")
    s.close()
    assert imapmerge.alive()
    if not SANITIZED:
        assert imapmerge.rss_kb() - base < 4096


def test_backend_idle_reports_at_once(testbed, user):
    """With a poll interval far away, news still arrives at once: the
    backends that offer IDLE are idling on the folder's behalf."""
    from proxy import variant_conf
    name, _ = user
    testbed.seed(name, count=3, migrated=1, seed_value=29)
    conf, imap, imaps = variant_conf(testbed, "imapmerge-idle.conf",
                                     [("poll-interval 2s",
                                       "poll-interval 600s")])
    im = Imapmerge(conf, f"{testbed.dir}/imapmerge-idle.log", imap, imaps)
    im.start()
    try:
        idler = Idler(testbed, imaps, user)
        idler.idle()
        time.sleep(0.5)
        new_only(testbed, name, "INBOX", 1, seed_value=30)
        seen = idler.collect(5, until=lambda ln: b"EXISTS" in ln)
        assert any(ln.strip() == b"* 4 EXISTS" for ln in seen), seen
        rng = random.Random(31)
        data, _, when, _ = tb.make_message(3100000, name, rng)
        tb.deliver(testbed.dir, "legacy", name, "INBOX", data, when=when)
        seen = idler.collect(5, until=lambda ln: b"EXISTS" in ln)
        assert any(ln.strip() == b"* 5 EXISTS" for ln in seen), seen
        idler.done()
        idler.cmd("n NOOP")
        idler.close()
    finally:
        im.stop()


def test_noop_answered_from_watching_servers(testbed, user):
    """A selected folder left alone for backend-idle-after is watched in
    IDLE on both servers: a NOOP then asks neither (it answers while the
    new server is frozen), news the servers push comes with the next
    NOOP, and the next command that needs a server ends the IDLE."""
    from proxy import variant_conf
    name, _ = user
    testbed.seed(name, count=3, migrated=1, seed_value=33)
    conf, imap, imaps = variant_conf(
        testbed, "imapmerge-watch.conf",
        [("poll-interval 2s",
          "poll-interval 600s\nbackend-idle-after 200ms")])
    im = Imapmerge(conf, f"{testbed.dir}/imapmerge-watch.log", imap, imaps)
    im.start()
    frozen = False
    try:
        c = Idler(testbed, imaps, user)
        time.sleep(1)
        tb.signal_dovecot(testbed.dir, "new", signal.SIGSTOP)
        frozen = True
        t0 = time.monotonic()
        c.cmd("n1 NOOP")
        assert time.monotonic() - t0 < 2
        tb.signal_dovecot(testbed.dir, "new", signal.SIGCONT)
        frozen = False
        # Pushed news, from either side.
        new_only(testbed, name, "INBOX", 1, seed_value=34)
        eventually(noop_brings(c, b"* 4 EXISTS"))
        rng = random.Random(35)
        data, _, when, mid = tb.make_message(3500000, name, rng)
        tb.deliver(testbed.dir, "legacy", name, "INBOX", data, when=when)
        time.sleep(1)
        eventually(noop_brings(c, b"* 5 EXISTS"))
        # A body after a quiet spell: the IDLE ends, the FETCH goes.
        time.sleep(1)
        lines = c.cmd("f UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS "
                      "(MESSAGE-ID)])")
        assert sum(ln.startswith(b"Message-ID:") for ln in lines) == 5, \
            lines
        assert mid.encode() in b"".join(lines)
        # An upload after a quiet spell: the IDLE ends, the APPEND goes.
        time.sleep(1)
        msg = (b"From: a@example.ac.jp\r\nSubject: after a quiet spell\r\n"
               b"Message-ID: <quiet-37@example.ac.jp>\r\n\r\nbody\r\n")
        c.s.sendall(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        lines = [c.readline()]
        while not lines[-1].startswith(b"a "):
            lines.append(c.readline())
        assert lines[-1].startswith(b"a OK [APPENDUID "), lines
        assert b"* 6 EXISTS\r\n" in lines, lines   # announced at once
        # The client's own IDLE takes over the watching IDLE.
        time.sleep(1)
        c.idle()
        new_only(testbed, name, "INBOX", 1, seed_value=36)
        seen = c.collect(5, until=lambda ln: b"EXISTS" in ln)
        assert any(ln.strip() == b"* 7 EXISTS" for ln in seen), seen
        c.done()
        c.cmd("d NOOP")
        c.cmd("u UNSELECT")
        c.close()
        assert im.alive()
    finally:
        if frozen:
            tb.signal_dovecot(testbed.dir, "new", signal.SIGCONT)
        im.stop()


# What a session hears of another session's EXPUNGE and APPEND at the end
# of each command (RFC 9051 §7.5.1; Dovecot's COMMAND_FLAG_USES_SEQS and
# _BREAKS_SEQS).  Each step: the other session expunges one message and
# appends one, then this one runs the command.
NEWS_STEPS = [
    ("FETCH", "c FETCH 1 (FLAGS)"),
    ("STORE", "c STORE 1 +FLAGS (\\Flagged)"),
    ("SEARCH", "c SEARCH ALL"),
    ("UID FETCH", "c UID FETCH 1:* (FLAGS)"),
    ("UID STORE", "c UID STORE 1:* -FLAGS (\\Flagged)"),
    ("UID SEARCH", "c UID SEARCH ALL"),
    ("COPY", "c COPY 1 News"),
    ("UID COPY", "c UID COPY 1 News"),
    ("APPEND", None),
    ("LIST", 'c LIST "" INBOX'),
    ("STATUS", "c STATUS INBOX (MESSAGES)"),
    ("EXPUNGE", "c EXPUNGE"),
    ("CHECK", "c CHECK"),
    ("NOOP", "c NOOP"),
]


def append_raw(conn, folder, text):
    """APPEND text to folder on a raw connection; the lines it got."""
    msg = text.encode()
    conn.s.sendall(b"p APPEND %s {%d+}\r\n" % (folder.encode(), len(msg)) +
                   msg + b"\r\n")
    lines = [conn.readline()]
    while not lines[-1].startswith(b"p "):
        lines.append(conn.readline())
    assert lines[-1].startswith(b"p OK"), lines
    return lines


def news_by_command(testbed, port, user, run):
    """{command: (an EXPUNGE came, an EXISTS came, an EXPUNGE came with it
    or with the NOOP after)}: what was held back comes at that NOOP."""
    a = Idler(testbed, port, user)
    b = Idler(testbed, port, user)
    heard = {}
    try:
        folder = f"News-{run}"
        a.cmd(f"c CREATE {folder}")
        for i, (name, line) in enumerate(NEWS_STEPS):
            first = b.cmd("x UID SEARCH ALL")
            # The last one: the client's message 1 stays for COPY.
            uid = [ln for ln in first if ln.startswith(b"* SEARCH")][0] \
                .split()[-1].decode()
            b.cmd(f"x UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
            b.cmd(f"x UID EXPUNGE {uid}")
            append_raw(b, "INBOX", f"From: b@example.ac.jp\r\nSubject: "
                       f"news {i}\r\nMessage-ID: <news-{run}-{i}@example."
                       f"ac.jp>\r\n\r\nstep {i}\r\n")
            if line is None:
                got = append_raw(a, folder, f"Subject: own {i}\r\nMessage-"
                                 f"ID: <own-{run}-{i}@example.ac.jp>\r\n"
                                 f"\r\nown\r\n")
            else:
                got = a.cmd(line.replace("News", folder))
            later = a.cmd("n NOOP")
            heard[name] = (any(ln.endswith(b" EXPUNGE\r\n") for ln in got),
                           any(ln.endswith(b" EXISTS\r\n") for ln in got),
                           any(ln.endswith(b" EXPUNGE\r\n") for ln in got +
                               later))
    finally:
        a.close()
        b.close()
    return heard


def test_news_follow_the_command_as_dovecots(testbed, imapmerge, user):
    """The same exchange against Dovecot directly and through imapmerge:
    what another session changed reaches the client at the end of the same
    commands, EXPUNGE only where sequence numbers may change (never after
    FETCH, STORE, SEARCH or COPY; after their UID forms, as Dovecot does),
    and nothing held back is lost: it comes with the NOOP after."""
    name, _ = user
    testbed.seed(name, count=len(NEWS_STEPS) + 2, migrated=0, seed_value=41)
    direct = news_by_command(testbed, int(testbed.env["LEGACY_IMAPS_PORT"]),
                             user, "direct")
    merged = news_by_command(testbed, imapmerge.imaps_port, user, "merged")
    assert all(seen for _, _, seen in merged.values()), merged
    assert merged == direct


def test_search_in_a_folder_on_one_server(testbed, imapmerge, user):
    """A SEARCH key the view cannot answer goes only to the servers that
    hold the folder: one that exists on the legacy server only, and one
    made through imapmerge on the new server only, search like INBOX."""
    name, _ = user
    ids = testbed.seed(name, folder="Projects", count=5, seed_value=43)
    c = login(testbed, imapmerge, user)
    typ, _ = c.select("Projects")
    assert typ == "OK"
    typ, data = c.uid("SEARCH", "HEADER", "Message-ID", ids[2])
    assert typ == "OK" and len(data[0].split()) == 1, data
    assert uid_of(c, ids[2]) == int(data[0])
    typ, data = c.search(None, "TEXT", "nothing-has-this")
    assert typ == "OK" and data == [b""], data
    assert c.create("Reports")[0] == "OK"
    msg = (b"From: a@example.ac.jp\r\nSubject: quarterly figures\r\n"
           b"Message-ID: <reports-43@example.ac.jp>\r\n\r\nfigures\r\n")
    assert c.append("Reports", None, None, msg)[0] == "OK"
    c.select("Reports")
    typ, data = c.search(None, "SUBJECT", "quarterly")
    assert (typ, data) == ("OK", [b"1"]), (typ, data)
    typ, data = c.search(None, "BODY", "figures", "SINCE", "1-Jan-2000")
    assert (typ, data) == ("OK", [b"1"]), (typ, data)
    c.logout()


def test_pipelined_appends(testbed, imapmerge, user):
    """APPENDs a client pipelines in one write (LITERAL+) queue behind
    each other: each one is answered OK with its own APPENDUID."""
    name, _ = user
    testbed.seed(name, count=2, seed_value=44)
    c = Idler(testbed, imapmerge.imaps_port, user)
    batch = b""
    for i in range(5):
        msg = (b"From: a@example.ac.jp\r\nSubject: pipelined %d\r\n"
               b"Message-ID: <pipelined-%d@example.ac.jp>\r\n\r\n%s\r\n"
               % (i, i, b"x" * (100 + 70000 * (i % 2))))
        batch += b"p%d APPEND INBOX {%d+}\r\n" % (i, len(msg)) + msg + b"\r\n"
    c.s.sendall(batch)
    done = {}
    while len(done) < 5:
        ln = c.readline()
        assert ln is not None, done
        if ln.startswith(b"p"):
            done[ln.split()[0]] = ln
    assert all(ln.split()[1] == b"OK" and b"APPENDUID" in ln
               for ln in done.values()), done
    lines = c.cmd("s UID SEARCH SUBJECT pipelined")
    found = [ln for ln in lines if ln.startswith(b"* SEARCH")][0].split()[2:]
    assert len(found) == 5, lines
    c.close()


BAD_NAMES = ['"&Jjo"', '"&AGE-"', '"&Jjo!"', '"a&"']


def answers(conn, lines):
    """The status word of each command's tagged answer (OK, NO, BAD)."""
    out = []
    for i, line in enumerate(lines):
        tag = f"v{i}"
        conn.s.sendall(f"{tag} {line}\r\n".encode())
        ln = conn.readline()
        while not ln.startswith(tag.encode() + b" "):
            ln = conn.readline()
        out.append((line, ln.split()[1].decode()))
    return out


def both_answers(testbed, imapmerge, user, lines, folder="INBOX"):
    """answers() of the same lines from the new Dovecot directly and
    through imapmerge: {"direct": [...], "merged": [...]}."""
    got = {}
    for side, port in (("direct", int(testbed.env["NEW_IMAPS_PORT"])),
                       ("merged", imapmerge.imaps_port)):
        c = Idler(testbed, port, user, folder=folder)
        got[side] = answers(c, lines)
        c.close()
    return got


def test_invalid_mailbox_names_answer_no_as_dovecot(testbed, imapmerge,
                                                     user):
    """A mailbox name that is a valid astring but no valid modified UTF-7
    is a valid command naming a mailbox that cannot exist: NO, as Dovecot
    answers, not BAD; the same commands sent to Dovecot directly and
    through imapmerge get the same status."""
    name, _ = user
    testbed.seed(name, count=2, migrated=2, seed_value=45)
    lines = []
    for n in BAD_NAMES:
        lines += [f"SELECT {n}", f"EXAMINE {n}", f"STATUS {n} (MESSAGES)",
                  f"CREATE {n}", f"DELETE {n}", f"RENAME {n} Other",
                  f"RENAME INBOX/x {n}", f"SUBSCRIBE {n}",
                  f"UNSUBSCRIBE {n}", f"APPEND {n} {{1+}}\r\nx"]
    lines += ["SELECT INBOX"] + [f"COPY 1 {n}" for n in BAD_NAMES]
    got = both_answers(testbed, imapmerge, user, lines)
    assert got["merged"] == got["direct"]
    assert {status for _, status in got["merged"]} <= {"OK", "NO"}


def test_list_selection_options_as_dovecot(testbed, imapmerge, user):
    """RFC 5258 §3: RECURSIVEMATCH alone, or with REMOTE only, is BAD;
    with SUBSCRIBED it is fine.  Same status directly and through
    imapmerge."""
    name, _ = user
    testbed.seed(name, count=1, migrated=1, seed_value=46)
    lines = ['LIST (RECURSIVEMATCH) "" ""', 'LIST (RECURSIVEMATCH) "" "*"',
             'LIST (REMOTE RECURSIVEMATCH) "" "*"',
             'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"',
             'LIST (SUBSCRIBED) "" "*"', 'LIST (REMOTE) "" "*"',
             'LIST () "" "*"', 'LIST (BOGUS) "" "*"']
    got = both_answers(testbed, imapmerge, user, lines)
    assert got["merged"] == got["direct"]
    assert got["merged"][0][1] == "BAD"


def keyword_story(testbed, port, user, word):
    """What two sessions hear when one sets a keyword new to the folder:
    (FLAGS and PERMANENTFLAGS name it, before the FETCH that shows it)
    for the setter's STORE and the other's NOOP, and SELECT's FLAGS."""
    a = Idler(testbed, port, user)
    b = Idler(testbed, port, user)

    def told(lines):
        flags = [i for i, ln in enumerate(lines)
                 if ln.startswith(b"* FLAGS (") and word in ln]
        perm = [i for i, ln in enumerate(lines)
                if b"[PERMANENTFLAGS (" in ln and word in ln and b"\\*" in ln]
        fetch = [i for i, ln in enumerate(lines)
                 if b" FETCH (" in ln and word in ln]
        return (bool(flags), bool(perm), bool(fetch),
                bool(flags and fetch and flags[0] < fetch[0]))
    try:
        story = [told(a.cmd(f"s STORE 1 +FLAGS ({word.decode()})")),
                 told(b.cmd("n NOOP")),
                 told(b.cmd("f FETCH 1 (FLAGS)")),
                 told(a.cmd("x SELECT INBOX"))]
    finally:
        a.close()
        b.close()
    return story


def test_keywords_announced_as_dovecot(testbed, imapmerge, user):
    """A keyword new to the folder is announced with FLAGS and
    PERMANENTFLAGS (with \\*) before any FETCH shows it, to the session
    that set it and to the others; SELECT lists the keywords in use."""
    name, _ = user
    testbed.seed(name, count=2, migrated=2, seed_value=47)
    direct = keyword_story(testbed, int(testbed.env["NEW_IMAPS_PORT"]),
                           user, b"$Direct47")
    merged = keyword_story(testbed, imapmerge.imaps_port, user, b"$Merged47")
    assert merged == direct, (merged, direct)
    assert merged[0] == (True, True, True, True), merged


def test_one_folder_tree_per_user(testbed, imapmerge, user):
    """A folder another session of the user creates, deletes, renames or
    subscribes is seen at this session's next command; one made on a
    server directly shows at the next LIST.  Thunderbird's Archive button:
    CREATE on one connection, UID MOVE on another."""
    name, _ = user
    ids = testbed.seed(name, count=3, migrated=3, seed_value=48)
    a = login(testbed, imapmerge, user)
    b = login(testbed, imapmerge, user)
    assert b.select("INBOX")[0] == "OK"
    assert a.create("Archive/2026")[0] == "OK"
    uid = uid_of(b, ids[0])
    typ, data = b.uid("MOVE", str(uid), "Archive/2026")
    assert typ == "OK", data
    assert b.select("Archive/2026")[0] == "OK"
    assert ids[0] in uid_map(b).values()
    assert b.select("INBOX")[0] == "OK"
    # Deleted by one, created again by the other.
    assert a.create("Projects48")[0] == "OK"
    assert b.status("Projects48", "(MESSAGES)")[0] == "OK"
    assert a.delete("Projects48")[0] == "OK"
    assert b.status("Projects48", "(MESSAGES)")[0] == "NO"
    assert b.create("Projects48")[0] == "OK"
    assert b"Projects48" in b"".join(a.list('""', "*")[1])
    # Renamed and subscribed by one, seen by the other.
    assert a.rename("Projects48", "Done48")[0] == "OK"
    assert a.subscribe("Done48")[0] == "OK"
    names = b"".join(b.list('""', "*")[1])
    assert b"Done48" in names and b"Projects48" not in names
    assert b"Done48" in b"".join(b.lsub('""', "*")[1])
    # Made on the new server directly: the next LIST shows it.
    direct = testbed.imaps("new", *user)
    assert direct.create("Direct48")[0] == "OK"
    direct.logout()
    assert b"Direct48" in b"".join(b.list('""', "*")[1])
    assert b.select("Direct48")[0] == "OK"
    a.logout()
    b.logout()


def gone_subscription(testbed, port, user, folder):
    """How LIST, LIST (SUBSCRIBED) and LSUB show a subscribed folder that
    was deleted: the attributes of each line naming it (children aside)."""
    c = Idler(testbed, port, user)
    try:
        c.cmd(f"a CREATE {folder}")
        c.cmd(f"b SUBSCRIBE {folder}")
        c.cmd(f"c DELETE {folder}")
        out = []
        for line in ('LIST "" "*"', 'LIST (SUBSCRIBED) "" "*"',
                     'LSUB "" "*"', 'LIST "" "*" RETURN (SUBSCRIBED)'):
            got = c.cmd(f"l {line}")
            attrs = [set(re.match(rb"\* \w+ \(([^)]*)\)", ln).group(1)
                         .split()) - {b"\\HasChildren", b"\\HasNoChildren"}
                     for ln in got if folder.encode() in ln]
            out.append((line, attrs))
        c.cmd(f"u UNSUBSCRIBE {folder}")
    finally:
        c.close()
    return out


def test_subscribed_folder_gone_as_dovecot(testbed, imapmerge, user):
    """A subscribed folder deleted stays subscribed: LIST (SUBSCRIBED) and
    LSUB show it \\NonExistent, plain LIST does not (RFC 5258 §3)."""
    name, _ = user
    testbed.seed(name, count=1, migrated=1, seed_value=49)
    direct = gone_subscription(testbed, int(testbed.env["NEW_IMAPS_PORT"]),
                               user, "Gone49")
    merged = gone_subscription(testbed, imapmerge.imaps_port, user,
                               "Gone49")
    assert merged == direct
    assert merged[1][1] and b"\\NonExistent" in merged[1][1][0], merged


def shaped_messages():
    """Mail as people send it: two recipients and a group, multipart
    alternative inside related with an attachment, a forward as
    message/rfc822, ISO-2022-JP with RFC 2047 names."""
    from email.message import EmailMessage
    from email.headerregistry import Address, Group
    out = []
    m = EmailMessage()
    m["From"] = Address("山田 太郎", "taro", "example.ac.jp")
    m["To"] = [Address("A", "a", "example.ac.jp"),
               Address("B", "b", "example.ac.jp")]
    m["Cc"] = Group("team", [Address("C", "c", "example.ac.jp"),
                             Address("D", "d", "example.ac.jp")])
    m["Subject"] = "会議の件 (two recipients)"
    m["Message-ID"] = "<shape-1@example.ac.jp>"
    m["Date"] = "Tue, 14 Nov 2023 10:00:00 +0900"
    m.set_content("本文です。\n", charset="iso-2022-jp")
    out.append(m)
    m = EmailMessage()
    m["From"] = "c@example.ac.jp"
    m["To"] = "a@example.ac.jp, b@example.ac.jp"
    m["Subject"] = "alternative and related"
    m["Message-ID"] = "<shape-2@example.ac.jp>"
    m["Date"] = "Tue, 14 Nov 2023 11:00:00 +0900"
    m.set_content("plain text\n")
    m.add_alternative("<p>html <img src='cid:logo'></p>\n", subtype="html")
    m.get_payload()[1].add_related(b"\x89PNG fake", "image", "png",
                                   cid="<logo>")
    m.add_attachment(b"%PDF-1.4 fake\n", maintype="application",
                     subtype="pdf", filename="議事録.pdf")
    out.append(m)
    m = EmailMessage()
    m["From"] = "d@example.ac.jp"
    m["To"] = "a@example.ac.jp"
    m["Subject"] = "Fwd: " + out[0]["Subject"]
    m["Message-ID"] = "<shape-3@example.ac.jp>"
    m["Date"] = "Tue, 14 Nov 2023 12:00:00 +0900"
    m.set_content("see below\n")
    m.add_attachment(out[0])
    out.append(m)
    return [bytes(x) for x in out]


def test_real_mail_shapes_fetch_as_dovecot(testbed, imapmerge, user):
    """ENVELOPE, BODYSTRUCTURE and BODY of real-world shapes (address
    lists and multipart bodies come as ")(" from Dovecot and Exchange)
    and the largest UID, directly and through imapmerge: the same."""
    name, _ = user
    for i, data in enumerate(shaped_messages()):
        tb.deliver(testbed.dir, "new", name, "Shapes", data,
                   when=1700000000 + i * 60)
    lines = ["f FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY FLAGS)",
             "g FETCH 2 (BODY.PEEK[2.1.MIME] BODY.PEEK[3] BINARY.SIZE[1])",
             "h FETCH 3 (BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT]<0.40>)",
             "u UID FETCH 1:4294967295 (FLAGS)",
             "s UID SEARCH UID 1:4294967295",
             "t SEARCH CHARSET UTF-8 SUBJECT {6+}\r\n会議",
             "n NOOP"]
    got = {}
    for side, port in (("direct", int(testbed.env["NEW_IMAPS_PORT"])),
                       ("merged", imapmerge.imaps_port)):
        c = Idler(testbed, port, user, folder="Shapes")
        got[side] = []
        for line in lines:
            c.s.sendall(line.encode("utf-8") + b"\r\n")
            tag = line.split()[0].encode()
            reply = []
            while True:
                ln = c.readline()
                assert ln is not None, (side, line, reply)
                if ln.startswith(tag + b" "):
                    break
                # UIDs differ by design; \\Recent imapmerge never sets.
                ln = re.sub(rb"UID \d+ ?", b"", ln)
                reply.append(re.sub(rb" ?\\Recent", b"", ln))
            got[side].append((line, ln.split()[1], reply))
        c.close()
    assert all(status == b"OK" for _, status, _ in got["merged"]), got
    assert got["merged"] == got["direct"]


def test_id_of_rfc2971_size_before_login(testbed, imapmerge, user):
    """Before login, ID gets its RFC's bounds (30 pairs, values of 1024
    octets) though other lines stay at 8 kB; as Dovecot answers."""
    pairs = " ".join(f'"field{i:02d}" "{chr(97 + i % 26) * 1024}"'
                     for i in range(30))
    lines = [f"i ID ({pairs})", f'l LOGIN "{"x" * 9000}" y', "c CAPABILITY"]
    got = {}
    for side, port in (("direct", int(testbed.env["NEW_IMAPS_PORT"])),
                       ("merged", imapmerge.imaps_port)):
        raw = socket.create_connection(("localhost", port), timeout=30)
        s = testbed.ctx().wrap_socket(raw, server_hostname="localhost")
        f = s.makefile("rb")
        f.readline()
        got[side] = []
        for line in lines:
            s.sendall(line.encode() + b"\r\n")
            tag = line.split()[0].encode()
            ln = f.readline()
            while ln and not ln.startswith(tag + b" "):
                ln = f.readline()
            got[side].append(ln.split()[1] if ln else None)
        s.close()
    assert got["merged"][0] == got["direct"][0] == b"OK", got
    assert got["merged"][2] == b"OK", got
    assert got["merged"][1] in (b"BAD", b"NO"), got


def test_server_refusal_relayed_as_dovecot(testbed, imapmerge, user):
    """A server that cannot give an item of a message (BINARY of a part it
    cannot decode: NO [PARSE]) is heard as it said it, not as a temporary
    [UNAVAILABLE] that makes clients try forever; and a FETCH response is
    never an empty list."""
    import corpus
    sample = [m for m in corpus.python_samples() if m[0] == "py-msg_15"]
    if not sample:
        pytest.skip("Python's email test data is not installed")
    name, _ = user
    corpus.deliver_corpus(testbed.dir, name, "Refused", "new", 1700000000,
                          messages=sample + corpus.corpus(samples=False)[:2])
    lines = ["a FETCH 1 (BINARY.SIZE[2])", "b FETCH 1:3 (RFC822.SIZE)",
             "c FETCH 1:3 (BINARY.SIZE[2] RFC822.SIZE)"]
    got = {}
    for side, port in (("direct", int(testbed.env["NEW_IMAPS_PORT"])),
                       ("merged", imapmerge.imaps_port)):
        c = Idler(testbed, port, user, folder="Refused")
        got[side] = answers(c, lines)
        c.s.sendall(b"d FETCH 1 (BINARY.SIZE[2])\r\n")
        reply = [c.readline()]
        while not reply[-1].startswith(b"d "):
            reply.append(c.readline())
        got[side].append(reply[-1].split()[1:3])
        assert not any(ln.endswith(b"FETCH ()\r\n") for ln in reply), reply
        c.close()
    assert got["merged"] == got["direct"], got


def test_fetch_of_a_message_expunged_elsewhere(testbed, imapmerge, user):
    """Another session expunged message 2; this one has not heard yet (a
    FETCH may not tell it).  FETCH 1:3 answers 1 and 3 and ends NO
    [EXPUNGEISSUED] (RFC 2180 §4.1.2), never OK with a message missing;
    the EXPUNGE comes at the next NOOP."""
    name, _ = user
    ids = testbed.seed(name, count=3, migrated=3, seed_value=50)
    a = Idler(testbed, imapmerge.imaps_port, user)
    b = login(testbed, imapmerge, user)
    b.select("INBOX")
    uid = uid_of(b, ids[1])
    b.uid("STORE", str(uid), "+FLAGS", r"(\Deleted)")
    assert b.uid("EXPUNGE", str(uid))[0] == "OK"
    a.s.sendall(b"f FETCH 1:3 (UID FLAGS)\r\n")
    lines = [a.readline()]
    while not lines[-1].startswith(b"f "):
        lines.append(a.readline())
    assert lines[-1].startswith(b"f NO [EXPUNGEISSUED]"), lines
    assert [ln.split()[1] for ln in lines[:-1]
            if b" FETCH (" in ln] == [b"1", b"3"], lines
    assert any(ln.strip() == b"* 2 EXPUNGE" for ln in a.cmd("n NOOP"))
    a.close()
    b.logout()
