"""SMTP submission through imapmerge (issue: SMTP submission relay).

The test bed's two submission upstreams are Dovecot submission services
relaying to sinks that deliver into the recipient's Maildir; the new one
also files the sender's copy into Sent Items, as Office 365 does.
"""

import os
import smtplib
import sqlite3
import ssl
import time
import uuid

import pytest


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
