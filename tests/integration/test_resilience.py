"""Failure behaviour (DESIGN §8): backends that go down, stall, throttle or
talk nonsense, and logins while the legacy server is down.

These tests stop, freeze and restart the test bed's own Dovecot servers;
each puts them back before it ends, whatever happens.
"""

import grp
import imaplib
import os
import pwd
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

import tb
from proxy import BINARY as IMAPMERGE, SANITIZED, Imapmerge, variant_conf
from fakeimap import BioConn, FakeImap
from test_mailbox import Idler, new_only, uid_map

BODY = "(BODY.PEEK[])"


def start(testbed, name, replace=(), extra=""):
    path, imap, imaps = variant_conf(testbed, name + ".conf", replace)
    if extra:
        with open(path, "a") as f:
            f.write(extra)
    im = Imapmerge(path, os.path.join(testbed.dir, name + ".log"), imap,
                   imaps)
    return im.start()


def connect(testbed, im, user=None, timeout=60):
    c = imaplib.IMAP4_SSL("localhost", im.imaps_port,
                          ssl_context=testbed.ctx(), timeout=timeout)
    if user:
        c.login(*user)
    return c


def bodies(c, uids):
    """uid -> (status, body or None), one UID FETCH each."""
    out = {}
    for uid in uids:
        typ, data = c.uid("FETCH", str(uid), BODY)
        body = next((x[1] for x in data if isinstance(x, tuple)), None)
        out[uid] = (typ, body, data)
    return out


class LegacyDown:
    """The legacy Dovecot stopped for the block, started again after."""

    def __init__(self, testbed):
        self.dir = testbed.dir
        self.port = int(testbed.LEGACY_IMAPS_PORT)

    def __enter__(self):
        tb.stop_dovecot(self.dir, "legacy")
        return self

    def up(self):
        if self.dir is None:
            return
        tb.start_dovecot(self.dir, "legacy")
        assert tb.wait_banner(self.port, None)
        self.dir = None

    def __exit__(self, *exc):
        self.up()


def test_legacy_down_while_clients_idle(testbed, user):
    """Acceptance 1: twenty clients IDLE in merged INBOX while the legacy
    server goes away for a while."""
    name, password = user
    testbed.seed(name, count=30, migrated=10, seed_value=71)
    im = start(testbed, "legacy-down", [("connect-timeout 5s",
                                         "connect-timeout 2s")])
    try:
        c = connect(testbed, im, user)
        c.select("INBOX")
        before = uid_map(c)
        assert len(before) == 30
        first = bodies(c, before)
        new = testbed.imaps("new", *user)
        new.select("INBOX")
        migrated = {m for u, m in uid_map(new).items()}
        new.logout()
        legacy_only = [u for u, m in before.items() if m not in migrated]
        assert len(legacy_only) == 20
        idlers = [Idler(testbed, im.imaps_port, user) for _ in range(20)]
        for i in idlers:
            i.idle()
        with LegacyDown(testbed) as down:
            new_only(testbed, name, "INBOX", 1, seed_value=72)
            for i in idlers:
                seen = i.collect(15, until=lambda ln: b"EXISTS" in ln)
                assert any(ln.strip() == b"* 31 EXISTS" for ln in seen), seen
                assert not [ln for ln in seen if b"EXPUNGE" in ln], seen
            # Still listed, flags and all; bodies unavailable.
            typ, data = c.noop()
            assert typ == "OK"
            typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
            listed = {int(re.search(rb"UID (\d+)", d).group(1))
                      for d in data}
            assert set(before) < listed and len(listed) == 31
            for uid, (typ, body, data) in bodies(c, legacy_only[:3]).items():
                assert typ == "NO" and body is None, data
            down.up()
            t0 = time.monotonic()
            while True:
                typ, _, data = bodies(c, legacy_only[:1])[legacy_only[0]]
                if typ == "OK":
                    break
                assert time.monotonic() - t0 < 10, data
                time.sleep(0.25)
        after = bodies(c, legacy_only)
        assert all(typ == "OK" and body == first[u][1]
                   for u, (typ, body, _) in after.items())
        final = uid_map(c)
        assert len(final) == 31
        assert len(set(final.values())) == 31, "a message appears twice"
        assert {u: final[u] for u in before} == before
        time.sleep(3)
        for i in idlers:
            seen = i.collect(0.2)
            assert not [ln for ln in seen if b"EXPUNGE" in ln], seen
            i.done()
            i.close()
        c.logout()
        log = im.log()
        assert "event=backend-lost" in log and "event=backend-back" in log
        assert im.alive()
    finally:
        im.stop()


def test_select_while_legacy_down_after_restart(testbed, user):
    """Issue 22, finding 4: the old server stops for about an hour when
    the migration period begins.  A fresh login then (imapmerge restarted
    meanwhile, so nothing of the user is in memory) selected INBOX with
    only the new server's messages: every old message vanished, and came
    back to be downloaded again when the server returned.  The folders and
    messages last seen are served from the state: same UIDs, flags, a
    folder only the old server has; bodies NO [UNAVAILABLE]; STATUS counts
    them; no EXPUNGE and no new UID when the server is back."""
    name, password = user
    testbed.seed(name, count=6, migrated=2, seed_value=2204)
    testbed.seed(name, folder="Old22", count=3, seed_value=2205)
    im = start(testbed, "legacy-down-restart")
    try:
        c = connect(testbed, im, user)
        typ, data = c.select("INBOX")
        before = uid_map(c)
        flags_before = c.uid("FETCH", "1:*", "(FLAGS)")[1]
        assert len(before) == 6
        assert c.select("Old22")[0] == "OK"
        old_before = uid_map(c)
        c.logout()
        t0 = time.monotonic()
        while "event=offline-hash-stored user=" + name not in im.log():
            assert time.monotonic() - t0 < 10
            time.sleep(0.1)
        with LegacyDown(testbed) as down:
            im.stop()
            im.start()
            c = connect(testbed, im, user)
            names = b"".join(c.list('""', "*")[1])
            assert b"Old22" in names, names
            typ, data = c.status("INBOX", "(MESSAGES)")
            assert typ == "OK" and b"MESSAGES 6" in data[0], data
            typ, data = c.select("INBOX")
            assert typ == "OK" and data == [b"6"], data
            assert uid_map_flags(c) == uid_map_flags_of(flags_before)
            idler = Idler(testbed, im.imaps_port, user)
            idler.cmd("s SELECT INBOX")
            idler.idle()
            typ, data = c.select("Old22")
            assert typ == "OK" and data == [b"3"], data
            typ, data = c.uid("FETCH", "1:*", "(UID FLAGS)")
            assert typ == "OK" and len(data) == 3, data
            uid = next(iter(old_before))
            typ, data = c.uid("FETCH", str(uid), BODY)
            assert typ == "NO" and b"UNAVAILABLE" in data[0], data
            down.up()
            t0 = time.monotonic()
            while True:
                typ, data = c.uid("FETCH", str(uid), BODY)
                if typ == "OK":
                    break
                assert time.monotonic() - t0 < 15, data
                time.sleep(0.25)
        assert uid_map(c) == old_before
        assert c.select("INBOX")[0] == "OK"
        assert uid_map(c) == before
        seen = idler.collect(3)
        assert not [ln for ln in seen if b"EXPUNGE" in ln], seen
        idler.done()
        idler.close()
        c.logout()
    finally:
        im.stop()


def uid_map_flags_of(lines):
    out = {}
    for d in lines:
        d = d[1] if isinstance(d, tuple) else d
        uid = int(re.search(rb"UID (\d+)", d).group(1))
        out[uid] = set(re.search(rb"FLAGS \(([^)]*)\)", d).group(1).split())
    return out


def uid_map_flags(c):
    return uid_map_flags_of(c.uid("FETCH", "1:*", "(FLAGS)")[1])


def test_login_while_legacy_down(testbed, user):
    """Acceptance 2: the offline hash lets the user in, and only with the
    right password; offline-auth no refuses."""
    name, password = user
    testbed.seed(name, count=4, migrated=2, seed_value=73)
    im = start(testbed, "offline-auth")
    try:
        c = connect(testbed, im, user)        # online: the hash is kept
        c.logout()
        t0 = time.monotonic()
        while "event=offline-hash-stored user=" + name not in im.log():
            assert time.monotonic() - t0 < 10
            time.sleep(0.1)
        with LegacyDown(testbed):
            c = connect(testbed, im)
            t0 = time.monotonic()
            with pytest.raises(imaplib.IMAP4.error) as e:
                c.login(name, password + "x")
            assert "[AUTHENTICATIONFAILED]" in str(e.value)
            assert time.monotonic() - t0 >= 1.5     # failed-login delay
            c = connect(testbed, im)
            assert c.login(name, password)[0] == "OK"
            alerts = c.untagged_responses.get("OK", [])
            assert any(b"[ALERT] The old mail server" in a for a in alerts)
            typ, data = c.select("INBOX")
            assert typ == "OK" and int(data[0]) >= 2
            c.logout()
            # A user never seen here has no hash: unavailable.
            other = tb.take_user(testbed.dir)
            c = connect(testbed, im)
            with pytest.raises(imaplib.IMAP4.error) as e:
                c.login(*other)
            assert "[UNAVAILABLE]" in str(e.value)
        log = im.log()
        assert "event=login-offline user=" + name in log
        assert re.search(r"event=auth-failed user=%s ip=127\.0\.0\.1" % name,
                         log)
        assert password not in log
    finally:
        im.stop()
    im = start(testbed, "offline-auth-no", extra="offline-auth no\n")
    try:
        c = connect(testbed, im, user)
        c.logout()
        with LegacyDown(testbed):
            c = connect(testbed, im)
            with pytest.raises(imaplib.IMAP4.error) as e:
                c.login(name, password)
            assert "[UNAVAILABLE]" in str(e.value)
    finally:
        im.stop()


def with_fake_new(testbed, name, fake, extra=""):
    return start(testbed, name, [
        ("imap localhost:%s tls" % testbed.NEW_IMAPS_PORT,
         "imap localhost:%s plain" % fake.port),
        ("connect-timeout 5s", "connect-timeout 2s")],
        extra="command-timeout 3s\n" + extra)


def test_throttling_is_honoured(testbed, user):
    """Acceptance 4: Office 365's throttling answer.  Reads are sent again
    after the backoff and succeed; a write fails NO [UNAVAILABLE]; the
    client never sees BAD; nothing reaches the server during a backoff."""
    fake = FakeImap("throttle", backoff_ms=400).start()
    im = with_fake_new(testbed, "throttle", fake)
    try:
        c = connect(testbed, im, user)
        assert not any(b"[ALERT]" in a
                       for a in c.untagged_responses.get("OK", []))
        typ, data = c.select("INBOX")
        assert typ == "OK", data
        typ, data = c.create("Projects")
        assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE]"), data
        typ, data = c.create("Projects")      # the client tries again
        assert typ == "OK", data
        assert "Projects" in [l.decode().rsplit(" ", 1)[-1].strip('"')
                              for l in c.list()[1]]
        typ, data = c.noop()
        assert typ == "OK"
        c.logout()
        ev = fake.events
        throttled = [t for t, kind, _ in ev if kind == "throttled"]
        assert len(throttled) >= 3
        for t in throttled:
            after = [u for u, _, _ in ev if u > t]
            assert not after or after[0] - t >= 0.39, \
                "a command came within the backoff"
        log = im.log()
        assert "event=backend-throttled backend=new" in log
    finally:
        im.stop()
        fake.stop()


@pytest.mark.parametrize("mode", ["garbage", "close-at-greeting",
                                  "huge-literal", "silent"])
def test_hostile_backend(testbed, user, mode):
    """Acceptance 5: a new server that talks nonsense, hangs up, announces
    a 2 GB literal or never answers costs bounded memory and gives clear
    answers: the login is served by the legacy side with an [ALERT], and
    what needs the new server is NO [UNAVAILABLE]."""
    fake = FakeImap(mode).start()
    im = with_fake_new(testbed, "hostile-" + mode, fake)
    try:
        base = im.rss_kb()
        for _ in range(3):
            c = connect(testbed, im, timeout=30)
            t0 = time.monotonic()
            assert c.login(*user)[0] == "OK"
            assert time.monotonic() - t0 < 10
            assert any(b"[ALERT] The new mail server" in a
                       for a in c.untagged_responses.get("OK", []))
            typ, data = c.create("Elsewhere")
            assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE]")
            typ, data = c.select("INBOX")
            assert typ == "OK"
            c.logout()
        assert im.alive()
        # ASan's shadow memory and quarantine make the figure meaningless.
        if not SANITIZED:
            assert im.rss_kb() - base < 16384, "memory grew"
        assert "event=backend-failed backend=new" in im.log()
    finally:
        im.stop()
        fake.stop()


class Raw:
    """A raw IMAPS connection, for commands imaplib cannot interrupt."""

    def __init__(self, testbed, port, user):
        raw = socket.create_connection(("localhost", port), timeout=30)
        self.s = testbed.ctx().wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.until(b"\r\n")
        self.buf = b"\r\n" + self.buf     # tagged() looks for CRLF tag
        self.s.sendall(b"a LOGIN %s %s\r\n" % (user[0].encode(),
                                               user[1].encode()))
        assert self.tagged(b"a").startswith(b"a OK")

    def until(self, mark, timeout=30):
        """Reads up to and including mark; None on timeout."""
        deadline = time.monotonic() + timeout
        while mark not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(1 << 20)
            except (socket.timeout, ssl.SSLError):
                return None
            assert chunk, "connection closed"
            self.buf += chunk
        got, _, self.buf = self.buf.partition(mark)
        return got + mark

    def tagged(self, tag, timeout=30):
        """The tagged line of tag (the rest of what came is dropped)."""
        if self.until(b"\r\n" + tag + b" ", timeout) is None:
            return None
        line = tag + b" " + self.until(b"\r\n")
        self.buf = b"\r\n" + self.buf
        return line

    def close(self):
        self.s.close()


def test_backend_stalls_during_fetch(testbed, user):
    """Acceptance 3, first half: the legacy server freezes (SIGSTOP) in the
    middle of a big FETCH.  The client hears NO within the command
    timeout, its session goes on, and the bodies come once the server
    runs again."""
    name, password = user
    testbed.seed(name, count=40, size=300000, seed_value=74)
    im = start(testbed, "stall", [("connect-timeout 5s",
                                   "connect-timeout 2s")],
               extra="command-timeout 3s\n")
    frozen = False
    try:
        r = Raw(testbed, im.imaps_port, user)
        r.s.sendall(b"s SELECT INBOX\r\n")
        assert b"s OK" in r.tagged(b"s")
        r.s.sendall(b"f UID FETCH 1:* (BODY.PEEK[])\r\n")
        assert r.until(b"BODY[] {", timeout=10) is not None
        while len(r.buf) < 600000:              # well into the stream
            r.buf += r.s.recv(1 << 20)
        tb.signal_dovecot(testbed.dir, "legacy", signal.SIGSTOP)
        frozen = True
        t0 = time.monotonic()
        line = r.tagged(b"f", timeout=20)
        waited = time.monotonic() - t0
        assert line is not None and line.startswith(b"f NO [UNAVAILABLE]"), \
            line
        assert waited < 3 + 2, waited
        r.s.sendall(b"n NOOP\r\n")
        assert r.tagged(b"n").startswith(b"n OK")
        tb.signal_dovecot(testbed.dir, "legacy", signal.SIGCONT)
        frozen = False
        t0 = time.monotonic()
        while True:
            r.s.sendall(b"g UID FETCH 1:* (BODY.PEEK[])\r\n")
            line = r.tagged(b"g", timeout=30)
            if line.startswith(b"g OK"):
                break
            assert time.monotonic() - t0 < 15, line
            time.sleep(0.5)
        r.close()
        assert im.alive()
    finally:
        im.stop()
        if frozen:
            tb.signal_dovecot(testbed.dir, "legacy", signal.SIGCONT)


def big_message(mid, mb):
    """A message of about mb megabytes with Message-ID mid."""
    head = (b"From: a@example.ac.jp\r\nSubject: big\r\nMessage-ID: %s"
            b"\r\n\r\n" % mid.encode())
    line = b"y" * 76 + b"\r\n"
    return head + line * ((mb << 20) // len(line))


def count_mid(testbed, user, mid):
    c = testbed.imaps("new", *user)
    c.select("INBOX", readonly=True)
    n = len(c.search(None, "HEADER", "Message-ID", mid)[1][0].split())
    c.logout()
    return n


def test_new_server_killed_mid_append(testbed, user):
    """Acceptance 3, second half: the new server dies (SIGKILL) while a
    20 MB APPEND streams to it.  NO, nothing half-written shows, and the
    same APPEND succeeds once the server is back."""
    name, password = user
    mid = "<killed-%s@example.ac.jp>" % name
    data = big_message(mid, 20)
    im = start(testbed, "kill-append", [("connect-timeout 5s",
                                         "connect-timeout 2s")],
               extra="command-timeout 5s\n")
    killed = False
    try:
        r = Raw(testbed, im.imaps_port, user)
        r.s.sendall(b"p APPEND INBOX {%d+}\r\n" % len(data))
        r.s.sendall(data[:4 << 20])
        time.sleep(0.5)
        tb.signal_dovecot(testbed.dir, "new", signal.SIGKILL)
        killed = True
        try:
            r.s.sendall(data[4 << 20:] + b"\r\n")
        except OSError:
            pass
        line = r.tagged(b"p", timeout=20)
        assert line is not None and line.startswith(b"p NO"), line
        tb.start_dovecot(testbed.dir, "new")
        assert tb.wait_banner(int(testbed.NEW_IMAPS_PORT), None)
        killed = False
        assert count_mid(testbed, user, mid) == 0
        r.s.sendall(b"n NOOP\r\n")
        assert r.tagged(b"n").startswith(b"n OK")
        t0 = time.monotonic()
        while True:
            r.s.sendall(b"q APPEND INBOX {%d+}\r\n" % len(data))
            r.s.sendall(data + b"\r\n")
            line = r.tagged(b"q", timeout=60)
            if line.startswith(b"q OK"):
                break
            assert time.monotonic() - t0 < 15, line
            time.sleep(0.5)
        assert b"APPENDUID" in line
        assert count_mid(testbed, user, mid) == 1
        r.close()
    finally:
        im.stop()
        if killed:
            tb.start_dovecot(testbed.dir, "new")


def test_new_server_killed_while_append_waits_for_it(testbed, user):
    """The new server stops reading during a big APPEND (SIGSTOP), so
    imapmerge stops reading the client; then it dies (SIGKILL).  The rest
    of the message is read and dropped, the client gets NO and the session
    goes on.  (Reading used to stay stopped: client and imapmerge waited
    for each other until the client gave up.)"""
    name, password = user
    data = big_message("<stalled-%s@example.ac.jp>" % name, 80)
    im = start(testbed, "stalled-append", [("connect-timeout 5s",
                                            "connect-timeout 2s")],
               extra="command-timeout 60s\nmax-message-size 100M\n")
    stopped = False
    try:
        r = Raw(testbed, im.imaps_port, user)
        r.s.settimeout(60)
        r.s.sendall(b"p APPEND INBOX {%d+}\r\n" % len(data))
        r.s.sendall(data[:1 << 20])
        time.sleep(0.3)
        tb.signal_dovecot(testbed.dir, "new", signal.SIGSTOP)
        stopped = True
        sent = []
        sender = threading.Thread(target=lambda: sent.append(
            r.s.sendall(data[1 << 20:] + b"\r\n") or True))
        sender.start()
        sender.join(3)
        # Every buffer on the way is full: the client cannot send.
        assert sender.is_alive(), "the upload never stalled"
        tb.signal_dovecot(testbed.dir, "new", signal.SIGKILL)
        sender.join(30)
        assert sent == [True], "imapmerge stopped reading for good"
        line = r.tagged(b"p", timeout=20)
        assert line is not None and line.startswith(b"p NO"), line
        tb.start_dovecot(testbed.dir, "new")
        assert tb.wait_banner(int(testbed.NEW_IMAPS_PORT), None)
        stopped = False
        r.s.sendall(b"n NOOP\r\n")
        assert r.tagged(b"n").startswith(b"n OK")
        r.close()
    finally:
        im.stop()
        if stopped:
            tb.signal_dovecot(testbed.dir, "new", signal.SIGKILL)
            tb.start_dovecot(testbed.dir, "new")


# ------------------------------------------------------------ security


def test_backend_certificate_for_another_name(testbed, user, tmp_path):
    """Acceptance 8: a certificate from the trusted CA, but for another
    host name, is refused like any other bad certificate."""
    ca = os.path.join(testbed.dir, "ca")
    ext = tmp_path / "ext"
    ext.write_text("subjectAltName = DNS:mail.other.example\n"
                   "extendedKeyUsage = serverAuth\n")
    key, csr, crt = (str(tmp_path / n) for n in ("k.pem", "c.csr", "c.pem"))
    tb.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
            key, "-out", csr, "-subj", "/CN=mail.other.example"])
    tb.run(["openssl", "x509", "-req", "-in", csr, "-CA", f"{ca}/ca.crt",
            "-CAkey", f"{ca}/ca.key", "-CAcreateserial", "-out", crt,
            "-days", "2", "-extfile", str(ext)])
    fake = FakeImap("throttle", tls=(crt, key)).start()
    im = start(testbed, "wrong-name", [
        ("imap localhost:%s tls" % testbed.NEW_IMAPS_PORT,
         "imap 127.0.0.1:%s tls" % fake.port)])
    try:
        c = connect(testbed, im, user)
        assert any(b"[ALERT] The new mail server" in a
                   for a in c.untagged_responses.get("OK", []))
        c.logout()
        log = im.log()
        assert re.search(r"backend=new .*certificate verification failed"
                         r".*(hostname|IP address) mismatch", log), log[-2000:]
        assert not [e for e in fake.events if e[1] == "cmd"]
    finally:
        im.stop()
        fake.stop()


def test_greeting_read_with_the_handshake(testbed, user):
    """imapmerge reads ahead on server connections (many TLS records per
    read).  A TLS 1.2 server's Finished and greeting arriving in one
    segment are then both read during the handshake, and no readiness
    event follows for the greeting: it must be taken anyway, not left
    until the greeting times out."""
    ca = os.path.join(testbed.dir, "ca")
    fake = FakeImap("throttle", tls=(f"{ca}/new.crt", f"{ca}/new.key"),
                    tls12_coalesced=True).start()
    im = start(testbed, "tls12", [
        ("imap localhost:%s tls" % testbed.NEW_IMAPS_PORT,
         "imap localhost:%s tls" % fake.port)])
    try:
        c = connect(testbed, im, user)
        c.logout()
        log = im.log()
        # A greeting left unread ends in "greeting timed out".
        assert re.search(r"event=backend-ready backend=new user=", log), \
            log[-2000:]
        assert "event=backend-failed" not in log, log[-2000:]
        assert [e for e in fake.events if e[1] == "cmd"]
    finally:
        im.stop()
        fake.stop()


def test_first_command_read_with_the_handshake(testbed):
    """The client side reads ahead too: a client's first command in one
    segment with its TLS 1.3 Finished is read during the handshake, and
    must be answered at once."""
    im = start(testbed, "finished-command")
    try:
        sock = socket.create_connection(("localhost", im.imaps_port),
                                        timeout=10)
        c = BioConn(sock, testbed.ctx(), server_hostname="localhost")
        c.sendall(b"a1 CAPABILITY\r\n")      # with the Finished
        got = b""
        while b"a1 OK" not in got:
            data = c.recv(65536)
            assert data, got
            got += data
        assert got.startswith(b"* OK ") and b"* CAPABILITY " in got
        c.sendall(b"a2 LOGOUT\r\n")
        c.close()
    finally:
        im.stop()


def test_corrupt_record_read_ahead(testbed):
    """A record that does not decrypt, read ahead behind a good one: the
    session ends at once with the TLS reason.  (The good command's answer
    cannot follow: OpenSSL writes nothing more on a connection that failed
    this way.)"""
    im = start(testbed, "corrupt-record")
    try:
        sock = socket.create_connection(("localhost", im.imaps_port),
                                        timeout=10)
        c = BioConn(sock, testbed.ctx(), server_hostname="localhost")
        c.flush()                               # the Finished
        c.obj.write(b"a1 NOOP\r\n")
        bad = b"\x17\x03\x03\x00\x40" + os.urandom(0x40)
        sock.sendall(c.out.read() + bad)        # one segment
        got = b""
        while True:                 # until closed; a timeout fails
            try:
                data = c.recv(65536)
            except socket.timeout:
                raise
            except (OSError, ssl.SSLError):
                break
            if not data:
                break
            got += data
        assert got.startswith(b"* OK ") and b"a1 " not in got, got
        c.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                'reason="TLS: ' not in im.log():
            time.sleep(0.05)
        assert re.search(r'event=disconnect user=- reason="TLS: ', im.log()), \
            im.log()[-2000:]
    finally:
        im.stop()


def test_secret_config_must_be_private(testbed, tmp_path):
    """Acceptance 8: a config holding a token command (a secret) that
    group or others can read is refused."""
    path, _, _ = variant_conf(testbed, "secret.conf", xoauth2=True)
    conf = tmp_path / "imapmerge.conf"
    conf.write_text(open(path).read())
    os.chmod(conf, 0o644)
    r = subprocess.run([IMAPMERGE, "-n", "-f", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "readable by group or others" in r.stderr
    os.chmod(conf, 0o600)
    r = subprocess.run([IMAPMERGE, "-n", "-f", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_runs_as_configured_user(testbed, user, tmp_path):
    """Acceptance 8: started as root, imapmerge binds its ports and then
    runs as the configured user and group, and still serves."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    # Somewhere nobody can reach: pytest's tmp_path is root's alone.
    state = os.path.join(testbed.dir, "drop-state-" + user[0])
    im = start(testbed, "drop", [
        ('state-dir "%s/imapmerge-state"' % testbed.dir,
         'state-dir "%s"' % state)],
        extra="user nobody\ngroup nogroup\n")
    try:
        with open(f"/proc/{im.proc.pid}/status") as f:
            ids = dict(line.split(":", 1) for line in f)
        nobody = pwd.getpwnam("nobody").pw_uid
        assert ids["Uid"].split() == [str(nobody)] * 4
        assert ids["Groups"].split() == [str(grp.getgrnam("nogroup").gr_gid)]
        c = connect(testbed, im, user)
        assert c.select("INBOX")[0] == "OK"
        c.logout()
        st = os.stat(state)
        assert st.st_uid == nobody and st.st_mode & 0o777 == 0o700
    finally:
        im.stop()
