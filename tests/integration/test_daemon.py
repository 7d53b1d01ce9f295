"""Running imapmerge as a service (issue 9): SIGHUP reloads the
configuration, SIGTERM drains, and the readiness protocol of the service
manager ($NOTIFY_SOCKET) hears about both."""

import imaplib
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest

import tb
from proxy import Imapmerge, variant_conf
from test_mailbox import login, wire
from test_write import big_message, raw_login


def started(testbed, tag, replace=(), env=None):
    conf, imap, imaps = variant_conf(testbed, f"{tag}.conf", replace=replace)
    log = os.path.join(testbed.dir, f"imapmerge-{tag}.log")
    return conf, Imapmerge(conf, log, imap, imaps, env=env).start()


def wait_log(im, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in im.log():
            return True
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in the log:\n{im.log()[-3000:]}")


def folders(c):
    typ, data = c.list()
    assert typ == "OK", data
    names = []
    for line in data:
        # (\Flags) "/" "Name" or (\Flags) "/" Name
        rest = line.decode().split(") ", 1)[1]
        name = rest.split(" ", 1)[1]
        names.append(name[1:-1] if name.startswith('"') else name)
    return names


def edit(conf, old, new):
    with open(conf) as f:
        text = f.read()
    assert old in text, old
    with open(conf, "w") as f:
        f.write(text.replace(old, new))


def wait_exit(im, timeout):
    try:
        return im.proc.wait(timeout)
    except Exception:
        raise AssertionError("imapmerge did not exit:\n" + im.log()[-3000:])


def test_sighup_reload(testbed, user):
    """Acceptance: a new hide-folder reaches new sessions only; a broken
    file is refused and the daemon keeps serving."""
    name, _ = user
    folder = f"Reload{uuid.uuid4().hex[:6]}"
    nc = testbed.imaps("new", *user)
    assert nc.create(folder)[0] == "OK"
    nc.logout()
    conf, im = started(testbed, f"reload-{name}")
    try:
        c1 = login(testbed, im, user)
        assert folder in folders(c1)
        # A keyword that needs a restart changes too: it keeps its value.
        edit(conf, "poll-interval 2s",
             f'poll-interval 2s\nhide-folder "{folder}"')
        edit(conf, "imapmerge-state", "imapmerge-state-elsewhere")
        im.proc.send_signal(signal.SIGHUP)
        wait_log(im, "reload: configuration")
        assert "reload: state-dir changed; it takes effect at the next " \
            "restart" in im.log()
        c2 = login(testbed, im, user)
        assert folder not in folders(c2)
        assert "INBOX" in folders(c2)
        # The session opened before keeps its configuration, and works.
        assert folder in folders(c1)
        assert c1.select("INBOX")[0] == "OK"
        assert c1.noop()[0] == "OK"
        assert not os.path.exists(os.path.join(testbed.dir,
                                               "imapmerge-state-elsewhere"))

        edit(conf, "poll-interval 2s", "poll-interval 2s\nno-such-keyword 1")
        im.proc.send_signal(signal.SIGHUP)
        wait_log(im, "refused; the running configuration stays")
        assert "no-such-keyword" in im.log()
        assert im.alive()
        c3 = login(testbed, im, user)
        assert folder not in folders(c3)
        for c in (c1, c2, c3):
            assert c.noop()[0] == "OK"
            c.logout()
    finally:
        im.stop()


def test_sigterm_finishes_streamed_append(testbed, user):
    """Acceptance: SIGTERM in the middle of a 30 MB APPEND streamed over
    about two seconds: the APPEND completes, then BYE; new connections are
    refused; the daemon exits 0 well within shutdown-timeout."""
    name, _ = user
    mid, data = big_message(name, 30 << 20)
    conf, im = started(testbed, f"drain-{name}",
                       replace=[("poll-interval 2s",
                                 "poll-interval 2s\nshutdown-timeout 20s")])
    try:
        s, f = raw_login(testbed, im.imaps_port, user)
        s.sendall(f"b APPEND INBOX () {{{len(data)}}}\r\n".encode())
        assert f.readline().startswith(b"+"), "no continuation"
        view = memoryview(data)
        chunk = 1 << 20
        t0 = time.monotonic()
        stopped_at = None
        refused = None
        for i in range(0, len(data), chunk):
            s.sendall(view[i:i + chunk])
            time.sleep(2.0 / 30)
            if stopped_at is None and i >= len(data) // 2:
                im.proc.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
                wait_log(im, "shutting down")
                try:
                    socket.create_connection(("127.0.0.1", im.imaps_port),
                                             timeout=2).close()
                    refused = False
                except ConnectionRefusedError:
                    refused = True
        s.sendall(b"\r\n")
        assert time.monotonic() - t0 > 1.5
        assert refused is True, "a connection was accepted after SIGTERM"
        lines = []
        while True:
            line = f.readline()
            if not line:
                break
            lines.append(line)
        s.close()
        tagged = [l for l in lines if l.startswith(b"b ")]
        assert tagged and tagged[0].startswith(b"b OK"), lines
        assert lines[-1].startswith(b"* BYE"), lines
        assert lines.index(tagged[0]) < len(lines) - 1
        rc = wait_exit(im, 15)
        assert rc == 0, im.log()[-3000:]
        assert time.monotonic() - stopped_at < 15
    finally:
        im.stop()
    nc = testbed.imaps("new", *user)
    nc.select("INBOX", readonly=True)
    found = nc.search(None, "HEADER", "Message-ID", mid)[1][0].split()
    assert len(found) == 1
    got = nc.fetch(found[0], "(RFC822.SIZE)")[1][0]
    nc.logout()
    assert f"RFC822.SIZE {len(data)})".encode() in got


def smtp_port(conf, tls="starttls"):
    with open(conf) as f:
        for line in f:
            words = line.split()
            if line.startswith("listen submission") and words[-1] == tls:
                return int(words[2].rsplit(":", 1)[1])
    raise AssertionError(f"no {tls} submission listener")


def test_sigterm_idle_sessions_exit_promptly(testbed, user):
    """Idle sessions, one of them in IDLE, one not logged in and one SMTP
    session, are told BYE (421) at once and the daemon exits."""
    conf, im = started(testbed, f"idle-{user[0]}")
    try:
        idle, fi = raw_login(testbed, im.imaps_port, user)
        idle.sendall(b"s SELECT INBOX\r\n")
        while not fi.readline().startswith(b"s "):
            pass
        idle.sendall(b"i IDLE\r\n")
        assert fi.readline().startswith(b"+")
        quiet, fq = raw_login(testbed, im.imaps_port, user)
        anon = socket.create_connection(("127.0.0.1", im.imap_port),
                                        timeout=10)
        fa = anon.makefile("rb")
        assert fa.readline().startswith(b"* OK")
        smtp = socket.create_connection(("127.0.0.1", smtp_port(conf)),
                                        timeout=10)
        fs = smtp.makefile("rb")
        assert fs.readline().startswith(b"220")
        # Two that broke off their TLS handshake, IMAP and SMTP: their
        # greetings can never be written and must not hold the exit (they
        # did, for 5 s).  The pause lets imapmerge see them go first.
        for port in (im.imaps_port, smtp_port(conf, "tls")):
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
        time.sleep(0.1)
        t0 = time.monotonic()
        im.proc.send_signal(signal.SIGTERM)
        for f in (fi, fq, fa):
            rest = f.read()
            assert b"* BYE" in rest, rest
        assert fs.read().startswith(b"421 "), "no 421 on SMTP"
        rc = wait_exit(im, 10)
        assert rc == 0
        assert time.monotonic() - t0 < 2
        for s in (idle, quiet, anon, smtp):
            s.close()
    finally:
        im.stop()


def test_second_sigterm_stops_at_once(testbed, user):
    """A command that does not finish (an APPEND whose client stalls)
    holds the drain; a second SIGTERM ends it."""
    conf, im = started(testbed, f"twice-{user[0]}")
    try:
        s, f = raw_login(testbed, im.imaps_port, user)
        s.sendall(b"b APPEND INBOX () {1000000}\r\n")
        assert f.readline().startswith(b"+")
        s.sendall(b"x" * 100000)
        im.proc.send_signal(signal.SIGTERM)
        wait_log(im, "shutting down")
        time.sleep(0.5)
        assert im.alive(), "exited while an APPEND was running"
        im.proc.send_signal(signal.SIGTERM)
        assert wait_exit(im, 5) == 0
        s.close()
    finally:
        im.stop()


def test_notify_socket(testbed, user, tmp_path):
    """READY=1 once serving, RELOADING=1 and READY=1 around a reload,
    STOPPING=1 on SIGTERM, each one datagram."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    try:
        conf, im = started(testbed, f"notify-{user[0]}", env=env)
        try:
            assert sock.recv(4096) == b"READY=1"
            im.proc.send_signal(signal.SIGHUP)
            assert sock.recv(4096).startswith(b"RELOADING=1")
            assert sock.recv(4096) == b"READY=1"
            im.proc.send_signal(signal.SIGTERM)
            assert sock.recv(4096) == b"STOPPING=1"
            assert wait_exit(im, 10) == 0
        finally:
            im.stop()
    finally:
        sock.close()


def test_self_signed_certificate_warned(testbed, user, tmp_path):
    """A placeholder certificate (the sample names Debian's snakeoil) is
    logged at start; the test bed's CA-issued one is not."""
    cert, key = tmp_path / "self.crt", tmp_path / "self.key"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ca = os.path.join(testbed.dir, "ca")
    warning = "is self-signed: clients will warn"
    conf, im = started(testbed, f"selfsigned-{user[0]}", replace=(
        (f'"{ca}/imapmerge.crt"', f'"{cert}"'),
        (f'"{ca}/imapmerge.key"', f'"{key}"')))
    try:
        wait_log(im, f"tls-certificate {cert} {warning}")
        # It still serves, with that certificate (which no CA vouches for).
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        c = imaplib.IMAP4_SSL("localhost", im.imaps_port, ssl_context=ctx,
                              timeout=60)
        c.login(*user)
        c.logout()
    finally:
        im.stop()
    conf, im = started(testbed, f"casigned-{user[0]}")
    try:
        c = login(testbed, im, user)
        c.logout()
        assert warning not in im.log()
    finally:
        im.stop()
