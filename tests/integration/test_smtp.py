"""SMTP submission through imapmerge (issue: SMTP submission relay).

The test bed's two submission upstreams are Dovecot submission services
relaying to sinks that deliver into the recipient's Maildir; the new one
also files the sender's copy into Sent Items, as Office 365 does.
"""

import base64
import os
import re
import smtplib
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid

import pytest

from proxy import SANITIZED


def message(sender, to, subject):
    mid = f"<{uuid.uuid4().hex}@example.ac.jp>"
    return mid, (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
                 f"Message-ID: {mid}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0900"
                 f"\r\n\r\nHello.\r\n").encode()


def wait_for(testbed, side, user, mid, folder="INBOX", timeout=10):
    """The relay header of the message with Message-ID mid once it is
    there (the test bed's sinks mark which upstream relayed it), or None."""
    deadline = time.monotonic() + timeout
    while True:
        c = testbed.imaps(side, *user)
        c.select(f'"{folder}"', readonly=True)
        found = c.search(None, "HEADER", "Message-ID", mid)[1][0]
        relay = None
        if found:
            data = c.fetch(found.split()[0].decode(),
                           "(BODY.PEEK[HEADER.FIELDS (X-TESTBED-RELAY)])")[1]
            relay = data[0][1].decode().split(":", 1)[-1].strip() or "?"
        c.logout()
        if relay or time.monotonic() >= deadline:
            return relay
        time.sleep(0.2)


def submit(testbed, imapmerge_port, user, sender, rcpt, data,
           implicit=False):
    ctx = testbed.ctx()
    if implicit:
        s = smtplib.SMTP_SSL("localhost", imapmerge_port, context=ctx,
                             timeout=30)
    else:
        s = smtplib.SMTP("localhost", imapmerge_port, timeout=30)
        s.starttls(context=ctx)
    s.login(*user)
    s.sendmail(sender, [rcpt], data)
    s.quit()


def recipient(testbed):
    name = "r" + uuid.uuid4().hex[:8]
    testbed.adduser(name)
    return (name, "secret")


def test_submission_goes_through_the_new_server(testbed, imapmerge, user):
    name, _ = user
    rcpt = recipient(testbed)
    mid, data = message(f"{name}@example.ac.jp", f"{rcpt[0]}@example.ac.jp",
                        "via imapmerge")
    submit(testbed, int(testbed.IMAPMERGE_SUBMISSION_PORT), user,
           f"{name}@example.ac.jp", f"{rcpt[0]}@example.ac.jp", data)
    assert wait_for(testbed, "new", rcpt, mid) == "new"
    # The new server filed the sender's copy, as Office 365 does.
    assert wait_for(testbed, "new", user, mid, folder="Sent Items")
    # The Message-ID is on record for the Sent-copy absorption of APPEND.
    db = sqlite3.connect(os.path.join(testbed.dir, "imapmerge-state",
                                      f"{name}.db"))
    rows = db.execute("SELECT msgid, at FROM sent").fetchall()
    db.close()
    assert [r[0] for r in rows] == [mid.strip("<>")]
    assert abs(rows[0][1] - time.time()) < 60


def test_mailing_list_sender_goes_through_legacy(testbed, imapmerge, user):
    rcpt = recipient(testbed)
    mid, data = message("lab@ml.example.ac.jp", f"{rcpt[0]}@example.ac.jp",
                        "to the list")
    submit(testbed, int(testbed.IMAPMERGE_SUBMISSIONS_PORT), user,
           "lab@ml.example.ac.jp", f"{rcpt[0]}@example.ac.jp", data,
           implicit=True)
    assert wait_for(testbed, "new", rcpt, mid) == "legacy"
    assert wait_for(testbed, "new", user, mid, folder="Sent Items",
                    timeout=1) is None


def test_submission_refuses_what_it_must(testbed, imapmerge, user):
    port = int(testbed.IMAPMERGE_SUBMISSION_PORT)
    s = smtplib.SMTP("localhost", port, timeout=30)
    s.ehlo()
    assert not s.has_extn("auth")             # not before TLS
    code, _ = s.docmd("AUTH", "PLAIN AGFsaWNlAHNlY3JldA==")
    assert code == 530
    code, _ = s.docmd("MAIL", "FROM:<a@example.ac.jp>")
    assert code == 530
    s.starttls(context=testbed.ctx())
    s.ehlo()
    assert s.has_extn("auth") and s.has_extn("size")
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login(user[0], "wrong")
    assert e.value.smtp_code == 535
    s.login(*user)
    code, _ = s.docmd("RCPT", "TO:<bob@example.ac.jp>")
    assert code == 503
    code, _ = s.docmd("MAIL", "FROM:<x@example.ac.jp> SIZE=99999999999")
    assert code == 552
    code, _ = s.docmd("FROBNICATE")
    assert code == 500
    s.quit()


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=60, **kw)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def test_swaks_submits(testbed, imapmerge, user):
    name, password = user
    rcpt = recipient(testbed)
    mid = f"<swaks-{uuid.uuid4().hex}@example.ac.jp>"
    rc, out = run(["swaks", "--server", "localhost", "--port",
                   str(testbed.IMAPMERGE_SUBMISSION_PORT), "--tls",
                   "--tls-verify", "--tls-ca-path", testbed.TESTBED_CA,
                   "--auth", "PLAIN", "--auth-user", name,
                   "--auth-password", password,
                   "--from", f"{name}@example.ac.jp",
                   "--to", f"{rcpt[0]}@example.ac.jp",
                   "--header", f"Message-ID: {mid}",
                   "--header", "Subject: swaks through imapmerge"])
    assert rc == 0, out
    assert wait_for(testbed, "new", rcpt, mid) == "new"


def test_neomutt_batch_sends(testbed, imapmerge, user):
    name, password = user
    rcpt = recipient(testbed)
    d = tempfile.mkdtemp(prefix="neomutt-")
    rc_path = os.path.join(d, "rc")
    with open(rc_path, "w") as f:
        f.write(f"""set from = "{name}@example.ac.jp"
set smtp_url = "smtp://{name}@localhost:{testbed.IMAPMERGE_SUBMISSION_PORT}/"
set smtp_pass = "{password}"
set ssl_starttls = yes
set ssl_force_tls = yes
set certificate_file = "{d}/certs"
set ssl_ca_certificates_file = "{testbed.TESTBED_CA}"
set record = ""
set header_cache = ""
""")
    os.chmod(rc_path, 0o600)
    subject = f"neomutt {uuid.uuid4().hex}"
    r = subprocess.run(["neomutt", "-n", "-F", rc_path, "-s", subject,
                        f"{rcpt[0]}@example.ac.jp"],
                       input=b"Sent by neomutt.\n", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60,
                       env=dict(os.environ, HOME=d))
    assert r.returncode == 0, r.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        c = testbed.imaps("new", *rcpt)
        c.select("INBOX", readonly=True)
        found = c.search(None, "SUBJECT", f'"{subject}"')[1][0]
        c.logout()
        if found:
            break
        time.sleep(0.2)
    assert found, r.stdout


def test_xoauth2_upstream(testbed, user):
    from proxy import Imapmerge, variant_conf
    name, password = user
    rcpt = recipient(testbed)
    for label, replace, ok in (("ok", (), True),
                               ("expired", [(' %u"', ' --expired %u"')],
                                False)):
        conf, imap, imaps = variant_conf(testbed, f"smtp-xo-{label}.conf",
                                         replace, xoauth2=True)
        with open(conf) as f:
            port = int(re.search(r"listen submission 127\.0\.0\.1:(\d+) "
                                 r"starttls", f.read()).group(1))
        im = Imapmerge(conf, os.path.join(testbed.dir, f"smtp-xo-{label}.log"),
                       imap, imaps)
        im.start()
        try:
            mid, data = message(f"{name}@example.ac.jp",
                                f"{rcpt[0]}@example.ac.jp", "xoauth2")
            t0 = time.monotonic()
            if ok:
                submit(testbed, port, user, f"{name}@example.ac.jp",
                       f"{rcpt[0]}@example.ac.jp", data)
                assert wait_for(testbed, "new", rcpt, mid) == "new"
            else:
                with pytest.raises(smtplib.SMTPSenderRefused) as e:
                    submit(testbed, port, user, f"{name}@example.ac.jp",
                           f"{rcpt[0]}@example.ac.jp", data)
                assert e.value.smtp_code in (454, 535)
                assert b"refused" in e.value.smtp_error
                assert time.monotonic() - t0 < 10
                assert "event=relay-failed upstream=new" in im.log()
        finally:
            im.stop()


def test_bad_input(testbed, imapmerge, user):
    port = int(testbed.IMAPMERGE_SUBMISSION_PORT)
    base = imapmerge.rss_kb()
    raw = socket.create_connection(("localhost", port), timeout=30)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220")
    raw.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    raw.sendall(b"NOOP " + b"x" * 100000 + b"\r\nNOOP\r\n")
    assert f.readline().startswith(b"500")
    assert f.readline().startswith(b"250")
    # Pipelined: answered in order.
    raw.sendall(b"NOOP\r\nRSET\r\nHELP\r\nVRFY x\r\n")
    assert [f.readline()[:3] for _ in range(4)] == \
        [b"250", b"250", b"214", b"252"]
    raw.close()
    s = smtplib.SMTP("localhost", port, timeout=30)
    s.starttls(context=testbed.ctx())
    s.ehlo()
    code, _ = s.docmd("AUTH", "PLAIN !!!notbase64")
    assert code == 501, code
    s.login(*user)
    name = user[0]
    s.mail(f"{name}@example.ac.jp")
    s.rcpt(f"{name}@example.ac.jp")
    # 40 MB against the 35 MB limit, streamed: 552, and memory stays flat.
    code, _ = s.docmd("DATA")
    assert code == 354
    chunk = (b"x" * 998 + b"\r\n") * 1000
    s.sock.sendall(b"Subject: big\r\n\r\n")
    for _ in range(40):
        s.sock.sendall(chunk)
    s.sock.sendall(b".\r\n")
    code, msg = s.getreply()
    assert code == 552, (code, msg)
    s.rset()
    s.quit()
    if not SANITIZED:
        assert imapmerge.rss_kb() - base < 8 << 10


def test_upstream_refusals_are_relayed(testbed, imapmerge, user):
    """The client hears the upstream's own code and text for a refused
    sender, recipient and message, and the session goes on."""
    name, _ = user
    rcpt = recipient(testbed)
    s = smtplib.SMTP("localhost", int(testbed.IMAPMERGE_SUBMISSION_PORT),
                     timeout=30)
    s.starttls(context=testbed.ctx())
    s.login(*user)
    code, msg = s.mail("sendas-denied@example.ac.jp")
    assert code == 550 and b"5.7.60" in msg and b"send as" in msg, msg
    s.rset()
    assert s.mail(f"{name}@example.ac.jp")[0] == 250
    code, msg = s.rcpt("nosuchuser@example.ac.jp")
    assert code == 550 and b"5.1.1" in msg and b"no such user" in msg, msg
    assert s.rcpt(f"{rcpt[0]}@example.ac.jp")[0] == 250
    code, msg = s.data(b"X-Testbed-Reject: yes\r\nSubject: no\r\n\r\nx\r\n")
    assert code == 554 and b"5.6.0" in msg, msg
    # And the next message goes through on the same session.
    mid, data = message(f"{name}@example.ac.jp", f"{rcpt[0]}@example.ac.jp",
                        "after refusals")
    s.sendmail(f"{name}@example.ac.jp", [f"{rcpt[0]}@example.ac.jp"], data)
    s.quit()
    assert wait_for(testbed, "new", rcpt, mid) == "new"


def test_upstream_lost_after_final_dot_is_never_250(testbed, imapmerge,
                                                     user):
    """The message is out, the upstream dies before it answers: the client
    must hear a 4xx (so it tries again later), never a 250."""
    import threading
    name, _ = user
    rcpt = recipient(testbed)
    s = smtplib.SMTP("localhost", int(testbed.IMAPMERGE_SUBMISSION_PORT),
                     timeout=30)
    s.starttls(context=testbed.ctx())
    s.login(*user)
    s.mail(f"{name}@example.ac.jp")
    s.rcpt(f"{rcpt[0]}@example.ac.jp")

    def kill_relay():
        # Dovecot's submission process for this message (not the login
        # process) waits on the stalled sink: kill it.
        time.sleep(1.5)
        subprocess.run(["pkill", "-KILL", "-f", r"^dovecot-tb-new/submission$"])
    t = threading.Thread(target=kill_relay)
    t.start()
    t0 = time.monotonic()
    code, msg = s.data(b"X-Testbed-Stall: yes\r\nSubject: stall\r\n\r\nx\r\n")
    t.join()
    assert 400 <= code < 500, (code, msg)
    assert time.monotonic() - t0 < 15
    s.close()


def test_auth_login_and_limits(testbed, imapmerge, user):
    """AUTH LOGIN works too; the 101st recipient of a message and the
    third failed login are refused."""
    name, password = user
    port = int(testbed.IMAPMERGE_SUBMISSION_PORT)
    s = smtplib.SMTP("localhost", port, timeout=30)
    s.starttls(context=testbed.ctx())
    s.ehlo()
    s.user, s.password = name, password
    code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235
    s.mail(f"{name}@example.ac.jp")
    for i in range(100):
        assert s.rcpt(f"r{i}@example.ac.jp")[0] == 250
    code, msg = s.rcpt("r100@example.ac.jp")
    assert code == 452 and b"4.5.3" in msg
    s.rset()
    s.quit()
    s = smtplib.SMTP("localhost", port, timeout=30)
    s.starttls(context=testbed.ctx())
    s.ehlo()
    codes = []
    for _ in range(3):
        codes.append(s.docmd("AUTH", "PLAIN " + base64.b64encode(
            f"\0{name}\0wrong".encode()).decode())[0])
    assert codes == [535, 535, 535]
    with pytest.raises(smtplib.SMTPServerDisconnected):
        s.noop()
        s.noop()
