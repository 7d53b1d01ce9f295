"""Real-world-shaped messages for the conformance suite.

Built with Python's `email` package, as a mail client would send them:
multipart/alternative, an attachment, a forward (message/rfc822), an
ISO-2022-JP body, RFC 2047 subjects, two recipients, a group address,
threading headers, one big enough (over 32 kB) to take imapmerge's
streamed-literal path.  Everything is fixed (dates, boundaries, ids), so
every run and every side gets the same bytes.

MAILBOX: the messages delivered into each script's folder, in order
(name, raw bytes, internal date, seen).  APPENDS: the messages the
scripts upload with {msg:NAME}.  LABELS: Message-ID -> name, which the
harness uses to name a message whatever UID a server gave it.
"""

import email.policy
import email.utils
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.mime.message import MIMEMessage
from email.header import Header

POLICY = email.policy.SMTP          # CRLF line ends, as on the wire
T0 = 1700000000                     # 14-Nov-2023 22:13:20 UTC
DOMAIN = "example.ac.jp"


def _mid(name):
    return f"<cf-{name}@{DOMAIN}>"


def _date(when):
    return email.utils.formatdate(when, localtime=False)


def _bytes(msg):
    return msg.as_bytes(policy=POLICY)


def plain(name, when, subject="Plain text, two recipients", body=None,
          extra=()):
    m = EmailMessage(policy=POLICY)
    m["Message-ID"] = _mid(name)
    m["Date"] = _date(when)
    m["From"] = "Taro Yamada <taro@example.ac.jp>"
    m["To"] = "Hanako Sato <hanako@example.ac.jp>, jiro@example.ac.jp"
    m["Cc"] = "lab-members@ml.example.ac.jp"
    m["Subject"] = subject
    for k, v in extra:
        m[k] = v
    m.set_content(body or "Hello both,\n\nthe meeting moves to 15:00.\n\n"
                  "-- \nTaro\n", charset="us-ascii", cte="7bit")
    return _bytes(m)


def alternative(name, when):
    m = EmailMessage(policy=POLICY)
    m["Message-ID"] = _mid(name)
    m["Date"] = _date(when)
    m["From"] = "=?UTF-8?B?5L2Q6Jek6Iqx5a2Q?= <hanako@example.ac.jp>"
    m["To"] = "taro@example.ac.jp"
    m["Subject"] = "=?UTF-8?B?5Lya6K2w44Gu6K2w5LqL6Yyy?= (minutes)"
    m["In-Reply-To"] = _mid("plain")
    m["References"] = _mid("plain")
    m.set_content("Minutes attached below.\nAction items: 3\n",
                  charset="utf-8", cte="quoted-printable")
    m.add_alternative("<html><body><p>Minutes attached below.</p>"
                      "<ul><li>Action items: 3</li></ul></body></html>\n",
                      subtype="html", charset="utf-8",
                      cte="quoted-printable")
    m.set_boundary("=_alt_boundary_1")
    return _bytes(m)


def attachment(name, when):
    m = MIMEMultipart("mixed", boundary="=_mixed_boundary_2")
    m["Message-ID"] = _mid(name)
    m["Date"] = _date(when)
    m["From"] = "Jiro Suzuki <jiro@example.ac.jp>"
    m["To"] = "taro@example.ac.jp, Hanako Sato <hanako@example.ac.jp>"
    m["Subject"] = Header("予算申請書 (budget request)", "utf-8").encode()
    m.attach(MIMEText("Please find the form attached.\n", "plain", "utf-8"))
    pdf = MIMEApplication(b"%PDF-1.4\n" + bytes(range(256)) * 8 +
                          b"\n%%EOF\n", "pdf")
    pdf.add_header("Content-Disposition", "attachment",
                   filename=("utf-8", "", "予算申請書.pdf"))
    m.attach(pdf)
    return m.as_bytes(policy=POLICY)


def forward(name, when, inner):
    m = MIMEMultipart("mixed", boundary="=_fwd_boundary_3")
    m["Message-ID"] = _mid(name)
    m["Date"] = _date(when)
    m["From"] = "Taro Yamada <taro@example.ac.jp>"
    m["To"] = "saburo@example.ac.jp"
    m["Subject"] = "Fwd: Plain text, two recipients"
    m.attach(MIMEText("FYI, see below.\n", "plain", "us-ascii"))
    inner_msg = email.message_from_bytes(inner, policy=POLICY)
    m.attach(MIMEMessage(inner_msg))
    return m.as_bytes(policy=POLICY)


def iso2022jp(name, when):
    text = "研究室ミーティングは金曜日です。\r\n資料を準備してください。\r\n"
    subject = Header("研究室ミーティング", "iso-2022-jp").encode()
    hdr = (f"Message-ID: {_mid(name)}\r\n"
           f"Date: {_date(when)}\r\n"
           "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=\r\n"
           " <yamada@example.ac.jp>\r\n"
           "To: undisclosed-recipients:;\r\n"
           f"Subject: {subject}\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
           "Content-Transfer-Encoding: 7bit\r\n\r\n")
    return hdr.encode() + text.encode("iso-2022-jp")


def big(name, when):
    line = "The quick brown fox jumps over the lazy dog; 0123456789.\r\n"
    body = "".join(f"{i:05d} {line}" for i in range(700))       # ~45 kB
    return (f"Message-ID: {_mid(name)}\r\nDate: {_date(when)}\r\n"
            "From: Archive Robot <robot@example.ac.jp>\r\n"
            "To: taro@example.ac.jp\r\nSubject: Nightly log (big)\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii"
            "\r\n\r\n" + body).encode()


def _mailbox():
    first = plain("plain", T0)
    out = [
        ("plain", first, T0, False),
        ("alt", alternative("alt", T0 + 3600), T0 + 3600, True),
        ("attach", attachment("attach", T0 + 7200), T0 + 7200, False),
        ("fwd", forward("fwd", T0 + 10800, first), T0 + 10800, True),
        ("jis", iso2022jp("jis", T0 + 14400), T0 + 14400, False),
        ("reply", plain("reply", T0 + 18000,
                        subject="Re: Plain text, two recipients",
                        body="Fine by me.\n\n> the meeting moves to 15:00.\n",
                        extra=[("In-Reply-To", _mid("plain")),
                               ("References", _mid("plain")),
                               ("Reply-To", "hanako+lists@example.ac.jp")]),
         T0 + 18000, True),
        ("big", big("big", T0 + 21600), T0 + 21600, False),
    ]
    return out


MAILBOX = _mailbox()

# Uploaded by the scripts ({msg:NAME}); each has its own Message-ID.
APPENDS = {
    "new1": plain("new1", T0 + 86400, subject="Appended one",
                  body="First upload.\n"),
    "new2": plain("new2", T0 + 90000, subject="Appended two",
                  body="Second upload.\n"),
    "new3": alternative("new3", T0 + 93600),
    "new4": iso2022jp("new4", T0 + 97200),
    "draft": plain("draft", T0 + 100800, subject="Draft: not sent yet",
                   body="Half written.\n"),
    "nomid": (b"From: nobody@example.ac.jp\r\nSubject: no message id\r\n"
              b"\r\nbody without an id\r\n"),
}

LABELS = {_mid(name): name for name, *_ in MAILBOX}
LABELS.update({_mid(name): name for name in APPENDS})
