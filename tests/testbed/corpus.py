"""A corpus of real-world mail shapes, for reading them through imapmerge
as clients do (tests/integration/test_corpus_clients.py, docs/testbed.md).

`corpus()` returns [(name, bytes)]: messages as people's mailers write
them, built with Python's `email` package, deterministic (fixed dates,
Message-IDs and MIME boundaries), followed by the sample messages of
Python's own email tests (`test/test_email/data/msg_*.txt`, Debian package
libpython3.11-testsuite) when they are installed.  `deliver_corpus` puts
them into a folder of one server, with increasing internal dates and a
fixed pattern of flags.
"""

import base64
import glob
import os
import struct
import zlib
from email import policy
from email.message import EmailMessage, MIMEPart

import tb

CRLF = policy.SMTP                     # what mailers send: CRLF lines
PYDATA = "/usr/lib/python3*/test/test_email/data/msg_*.txt"
DOMAIN = "example.ac.jp"
# Maildir flag letters per message, in turn (D F R S): none, \Seen,
# \Flagged \Seen, \Answered \Seen, \Draft.
FLAG_CYCLE = ["", "S", "FS", "RS", "D"]


# ---------------------------------------------------------------- pieces

def png_1x1():
    """A valid 1x1 PNG (one white pixel)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) +
            chunk(b"IEND", b""))


def small_pdf(title):
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
            b"% " + title.encode() + b"\n"
            b"trailer << /Root 1 0 R >>\n%%EOF\n")


def ew(text, charset="ISO-2022-JP", step=8):
    """RFC 2047 B encoded words of text, each at most 75 characters and,
    for ISO-2022-JP, each back in ASCII at its end; folded one per line
    as Japanese mailers do."""
    words = []
    for i in range(0, len(text), step):
        raw = text[i:i + step].encode(charset)
        words.append(f"=?{charset}?B?{base64.b64encode(raw).decode()}?=")
    return "\r\n ".join(words)


def headers(*lines):
    """Raw header lines (str or bytes), CRLF-terminated, as bytes."""
    out = b""
    for ln in lines:
        out += (ln.encode("utf-8") if isinstance(ln, str) else ln) + b"\r\n"
    return out


def with_headers(top, part):
    """A message of raw top header lines over a MIME entity built with the
    email package: exact control over the headers people's mailers write
    (encoded words, groups, folding) that the package would re-render."""
    return top + bytes(part)


def fix_boundaries(msg, name):
    """Fixed MIME boundaries (the package picks random ones)."""
    n = 0
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            part.set_boundary(f"=_{name}_{n}")
            n += 1
    return msg


def entity(**kw):
    return MIMEPart(policy=CRLF, **kw)


def common(subject, mid, date, frm="Taro Yamada <taro@example.ac.jp>",
           to="hanako@example.ac.jp"):
    out = [f"From: {frm}", f"To: {to}", f"Subject: {subject}",
           f"Date: {date}"]
    if mid:
        out.append(f"Message-ID: <{mid}@{DOMAIN}>")
    out.append("MIME-Version: 1.0")
    return out


# ---------------------------------------------------------------- shapes

def mixed_attachments():
    """multipart/mixed: text, a PDF, a PNG, and a PDF whose Japanese name
    is long enough for RFC 2231 continuations (filename*0*=, *1*=)."""
    m = EmailMessage(policy=CRLF)
    m["From"] = "Taro Yamada <taro@example.ac.jp>"
    m["To"] = "Hanako Suzuki <hanako@example.ac.jp>"
    m["Subject"] = "Documents for Friday"
    m["Date"] = "Mon, 06 Nov 2023 09:15:00 +0900"
    m["Message-ID"] = f"<corpus-mixed@{DOMAIN}>"
    m.set_content("Please find the documents attached.\n\nTaro\n")
    m.add_attachment(small_pdf("minutes"), maintype="application",
                     subtype="pdf", filename="minutes-2023-11.pdf")
    m.add_attachment(png_1x1(), maintype="image", subtype="png",
                     filename="photo.png")
    m.add_attachment(small_pdf("application"), maintype="application",
                     subtype="pdf",
                     filename="令和五年度研究費申請書類一式_最終版_提出用.pdf")
    return bytes(fix_boundaries(m, "mixed"))


def related_alternative():
    """multipart/related (type multipart/alternative): plain and HTML
    alternatives, and the logo the HTML shows by cid."""
    alt = entity()
    alt.set_content("Newsletter\n\nThis month in the lab.\n")
    alt.add_alternative("<html><body><img src=\"cid:logo@example.ac.jp\">"
                        "<p>This month in the lab.</p></body></html>\n",
                        subtype="html")
    img = entity()
    img.set_content(png_1x1(), maintype="image", subtype="png",
                    cid="<logo@example.ac.jp>", disposition="inline",
                    filename="logo.png")
    rel = entity()
    rel["Content-Type"] = 'multipart/related; type="multipart/alternative"'
    rel.attach(alt)
    rel.attach(img)
    fix_boundaries(rel, "related")
    return with_headers(headers(*common(
        "Lab newsletter", "corpus-related", "Tue, 07 Nov 2023 08:00:00 +0900",
        frm="Lab News <news@example.ac.jp>")), rel)


def forward_rfc822():
    """A forward as message/rfc822, the forwarded mail itself multipart
    with an attachment."""
    inner = EmailMessage(policy=CRLF)
    inner["From"] = "Jiro Sato <jiro@example.ac.jp>"
    inner["To"] = "Taro Yamada <taro@example.ac.jp>"
    inner["Subject"] = "Trip report"
    inner["Date"] = "Wed, 08 Nov 2023 17:30:00 +0900"
    inner["Message-ID"] = f"<corpus-forwarded-inner@{DOMAIN}>"
    inner.set_content("The report is attached.\n")
    inner.add_attachment(b"date,place,cost\n2023-11-01,Kyoto,12000\n",
                         maintype="text", subtype="csv",
                         filename="expenses.csv")
    fix_boundaries(inner, "inner")
    m = EmailMessage(policy=CRLF)
    m["From"] = "Taro Yamada <taro@example.ac.jp>"
    m["To"] = "Office <office@example.ac.jp>"
    m["Subject"] = "Fwd: Trip report"
    m["Date"] = "Thu, 09 Nov 2023 09:00:00 +0900"
    m["Message-ID"] = f"<corpus-forward@{DOMAIN}>"
    m.set_content("FYI, see the forwarded message.\n")
    m.add_attachment(inner, cte="7bit")
    return bytes(fix_boundaries(m, "forward"))


def iso_2022_jp():
    """The classic Japanese mail: ISO-2022-JP body, 7bit, and subject and
    names in ISO-2022-JP encoded words."""
    body = entity()
    body.set_content("山田です。\n来週の会議は水曜日の午後三時からです。\n"
                     "よろしくお願いいたします。\n", charset="iso-2022-jp")
    return with_headers(headers(
        f"From: {ew('山田 太郎')} <taro@example.ac.jp>",
        f"To: {ew('鈴木 花子')} <hanako@example.ac.jp>",
        f"Subject: {ew('来週の研究室会議の日程について')}",
        "Date: Fri, 10 Nov 2023 10:00:00 +0900",
        f"Message-ID: <corpus-iso2022jp@{DOMAIN}>",
        "MIME-Version: 1.0",
        "X-Mailer: Becky! ver. 2.81.04"), body)


def shift_jis():
    """A Shift_JIS body in 8bit, subject in Shift_JIS encoded words."""
    body = entity()
    body.set_content("請求書を送付いたします。\nご確認ください。\n",
                     charset="shift_jis", cte="8bit")
    return with_headers(headers(
        f"From: {ew('経理課', 'Shift_JIS')} <keiri@example.ac.jp>",
        "To: taro@example.ac.jp",
        f"Subject: {ew('請求書の送付（十一月分）', 'Shift_JIS')}",
        "Date: Sat, 11 Nov 2023 11:00:00 +0900",
        f"Message-ID: <corpus-sjis@{DOMAIN}>",
        "MIME-Version: 1.0"), body)


def rfc2047_mixed():
    """Encoded words of several charsets and both encodings in one
    header; a display name of encoded words inside quotes (wrong by RFC
    2047 section 5, and common)."""
    body = entity()
    body.set_content("本文はUTF-8です。\n", charset="utf-8", cte="base64")
    q = "=?UTF-8?Q?=E5=A0=B1=E5=91=8A=E6=9B=B8?="     # 報告書
    return with_headers(headers(
        f'From: "{ew("佐藤 次郎", "UTF-8")}" <jiro@example.ac.jp>',
        f"To: {ew('山田', 'UTF-8')} <taro@example.ac.jp>,\r\n"
        f" {ew('鈴木', 'ISO-2022-JP')} <hanako@example.ac.jp>",
        f"Cc: {ew('研究室 メンバー', 'Shift_JIS')} <lab@example.ac.jp>",
        f"Subject: Re: {q} {ew('の提出期限', 'UTF-8')} (draft v2)",
        "Date: Sun, 12 Nov 2023 12:00:00 +0900",
        f"Message-ID: <corpus-rfc2047@{DOMAIN}>",
        f"In-Reply-To: <corpus-iso2022jp@{DOMAIN}>",
        "MIME-Version: 1.0"), body)


def undisclosed_recipients():
    """RFC 5322 empty group as the only To, and a Bcc'd mailing."""
    body = entity()
    body.set_content("To all members: the server moves on Monday.\n")
    return with_headers(headers(
        "From: IT Center <itc@example.ac.jp>",
        "To: undisclosed-recipients:;",
        "Subject: Mail server migration",
        "Date: Mon, 13 Nov 2023 08:30:00 +0900",
        f"Message-ID: <corpus-undisclosed@{DOMAIN}>",
        "MIME-Version: 1.0"), body)


def named_group():
    """A named group with members (one with an encoded name) beside a
    plain address, and a group in Cc."""
    body = entity()
    body.set_content("Agenda attached next time.\n")
    return with_headers(headers(
        "From: Taro Yamada <taro@example.ac.jp>",
        "To: Project Team: Alice <alice@example.ac.jp>,\r\n"
        f" {ew('鈴木 花子')} <hanako@example.ac.jp>, bob@example.ac.jp;,\r\n"
        " Office <office@example.ac.jp>",
        "Cc: Observers: carol@example.ac.jp;",
        "Subject: Project kickoff",
        "Date: Tue, 14 Nov 2023 09:00:00 +0900",
        f"Message-ID: <corpus-group@{DOMAIN}>",
        "MIME-Version: 1.0"), body)


def many_recipients():
    """80 recipients in To and 40 in Cc, folded by the package."""
    m = EmailMessage(policy=CRLF)
    m["From"] = "Dean's Office <dean@example.ac.jp>"
    m["To"] = ", ".join(f"Staff {i:03d} <staff{i:03d}@{DOMAIN}>"
                        for i in range(80))
    m["Cc"] = ", ".join(f"lecturer{i:02d}@{DOMAIN}" for i in range(40))
    m["Subject"] = "Faculty meeting"
    m["Date"] = "Wed, 15 Nov 2023 10:00:00 +0900"
    m["Message-ID"] = f"<corpus-many@{DOMAIN}>"
    m.set_content("The faculty meeting is on the 20th.\n")
    return bytes(m)


def long_header():
    """Header fields folded over 2,000 bytes: a References chain of 70
    Message-IDs and a long folded X- header."""
    refs = " ".join(f"<thread-{i:03d}.20231116.{i * 7919:08x}@{DOMAIN}>"
                    for i in range(70))
    m = EmailMessage(policy=CRLF)
    m["From"] = "Jiro Sato <jiro@example.ac.jp>"
    m["To"] = "taro@example.ac.jp"
    m["Subject"] = "Re: Re: Re: Re: Re: Re: a long thread"
    m["Date"] = "Thu, 16 Nov 2023 11:00:00 +0900"
    m["Message-ID"] = f"<corpus-longheader@{DOMAIN}>"
    m["In-Reply-To"] = f"<thread-069.20231116.{69 * 7919:08x}@{DOMAIN}>"
    m["References"] = refs
    m["X-Spam-Report"] = " ".join(
        f"* {i / 10:.1f} RULE_{i:03d} description of rule number {i}"
        for i in range(45))
    m.set_content("Agreed.\n")
    return bytes(m)


def utf8_headers():
    """8-bit headers: raw UTF-8 in From, To and Subject (as some mailers
    and SMTPUTF8 write), a UTF-8 8bit body."""
    body = entity()
    body.set_content("生のUTF-8ヘッダーです。\n", charset="utf-8",
                     cte="8bit")
    return with_headers(headers(
        "From: 高橋 三郎 <saburo@example.ac.jp>",
        "To: 山田 太郎 <taro@example.ac.jp>",
        "Subject: 生のUTF-8の件名 (8-bit header)",
        "Date: Fri, 17 Nov 2023 12:00:00 +0900",
        f"Message-ID: <corpus-utf8@{DOMAIN}>",
        "MIME-Version: 1.0"), body)


def no_message_id():
    body = entity()
    body.set_content("Sent from a script that sets no Message-ID.\n")
    return with_headers(headers(*common(
        "cron: backup finished", None, "Sat, 18 Nov 2023 03:00:00 +0900",
        frm="root <root@example.ac.jp>")), body)


def two_message_ids():
    body = entity()
    body.set_content("A list manager added a second Message-ID.\n")
    return with_headers(headers(
        *common("Two Message-IDs", "corpus-twoids-a",
                "Sun, 19 Nov 2023 13:00:00 +0900"),
        f"Message-ID: <corpus-twoids-b@{DOMAIN}>"), body)


def empty_body():
    return headers(*common("(empty body)", "corpus-empty",
                           "Mon, 20 Nov 2023 14:00:00 +0900"),
                   "Content-Type: text/plain; charset=us-ascii") + b"\r\n"


def calendar():
    """An invitation as Outlook sends it: text and text/calendar
    (method REQUEST) alternatives, and the same as an .ics attachment."""
    ics = ("BEGIN:VCALENDAR\nPRODID:-//Microsoft Corporation//Outlook 16.0"
           " MIMEDIR//EN\nVERSION:2.0\nMETHOD:REQUEST\nBEGIN:VEVENT\n"
           "UID:corpus-event-1@example.ac.jp\nDTSTAMP:20231121T010000Z\n"
           "DTSTART:20231128T050000Z\nDTEND:20231128T060000Z\n"
           "SUMMARY:研究室会議\nLOCATION:Room 301\n"
           "ORGANIZER;CN=Taro Yamada:mailto:taro@example.ac.jp\n"
           "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:"
           "mailto:hanako@example.ac.jp\nEND:VEVENT\nEND:VCALENDAR\n")
    m = EmailMessage(policy=CRLF)
    m["From"] = "Taro Yamada <taro@example.ac.jp>"
    m["To"] = "Hanako Suzuki <hanako@example.ac.jp>"
    m["Subject"] = "Invitation: 研究室会議 @ Tue 28 Nov 14:00"
    m["Date"] = "Tue, 21 Nov 2023 10:00:00 +0900"
    m["Message-ID"] = f"<corpus-calendar@{DOMAIN}>"
    m.set_content("You are invited to 研究室会議, Tue 28 Nov 14:00-15:00, "
                  "Room 301.\n", charset="utf-8")
    m.add_alternative(ics, subtype="calendar", charset="utf-8",
                      params={"method": "REQUEST"})
    m.add_attachment(ics.encode(), maintype="application", subtype="ics",
                     filename="invite.ics")
    return bytes(fix_boundaries(m, "calendar"))


def delivery_status():
    """A bounce: multipart/report with a human part, a
    message/delivery-status part and the returned message."""
    text = entity()
    text.set_content("Delivery has failed to these recipients:\n\n"
                     "nosuch@example.org\n")
    dsn = entity()
    dsn["Content-Type"] = "message/delivery-status"
    per_message, per_recipient = entity(), entity()
    per_message["Reporting-MTA"] = "dns; mx.example.ac.jp"
    per_message["Arrival-Date"] = "Wed, 22 Nov 2023 09:59:58 +0900"
    for k, v in (("Final-Recipient", "rfc822; nosuch@example.org"),
                 ("Action", "failed"), ("Status", "5.1.1"),
                 ("Remote-MTA", "dns; mx.example.org"),
                 ("Diagnostic-Code", "smtp; 550 5.1.1 User unknown")):
        per_recipient[k] = v
    dsn.set_payload([per_message, per_recipient])
    orig = EmailMessage(policy=CRLF)
    orig["From"] = "Taro Yamada <taro@example.ac.jp>"
    orig["To"] = "nosuch@example.org"
    orig["Subject"] = "Question about your paper"
    orig["Date"] = "Wed, 22 Nov 2023 09:59:00 +0900"
    orig["Message-ID"] = f"<corpus-bounced@{DOMAIN}>"
    orig.set_content("Dear colleague, ...\n")
    returned = entity()
    returned.set_content(orig, cte="7bit")
    rep = entity()
    rep["Content-Type"] = "multipart/report; report-type=delivery-status"
    for p in (text, dsn, returned):
        rep.attach(p)
    fix_boundaries(rep, "report")
    return with_headers(headers(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.ac.jp>",
        "To: taro@example.ac.jp",
        "Subject: Undelivered Mail Returned to Sender",
        "Date: Wed, 22 Nov 2023 10:00:00 +0900",
        f"Message-ID: <corpus-dsn@mx.{DOMAIN}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0"), rep)


def signed():
    """S/MIME's detached shape: multipart/signed over a multipart/mixed,
    an application/pkcs7-signature part of fake signature bytes."""
    content = entity()
    content.set_content("Signed statement.\n")
    content.add_attachment(small_pdf("contract"), maintype="application",
                           subtype="pdf", filename="contract.pdf")
    sig = entity()
    sig.set_content(bytes(range(256)) * 2, maintype="application",
                    subtype="pkcs7-signature", filename="smime.p7s")
    sig.replace_header("Content-Type",
                       'application/pkcs7-signature; name="smime.p7s"')
    top = entity()
    top["Content-Type"] = ('multipart/signed; '
                           'protocol="application/pkcs7-signature"; '
                           'micalg=sha-256')
    top.attach(content)
    top.attach(sig)
    fix_boundaries(top, "signed")
    return with_headers(headers(*common(
        "Signed: contract", "corpus-signed",
        "Thu, 23 Nov 2023 15:00:00 +0900")), top)


BUILT = [("mixed-attachments", mixed_attachments),
         ("related-alternative", related_alternative),
         ("forward-rfc822", forward_rfc822),
         ("iso-2022-jp", iso_2022_jp),
         ("shift-jis", shift_jis),
         ("rfc2047-japanese", rfc2047_mixed),
         ("group-undisclosed", undisclosed_recipients),
         ("group-named", named_group),
         ("many-recipients", many_recipients),
         ("long-header", long_header),
         ("utf8-headers", utf8_headers),
         ("no-message-id", no_message_id),
         ("two-message-ids", two_message_ids),
         ("empty-body", empty_body),
         ("calendar", calendar),
         ("dsn", delivery_status),
         ("signed", signed)]


def python_samples():
    """Python's own email test messages (Debian: libpython3.11-testsuite),
    as they are; [] when the package is not installed."""
    out = []
    for path in sorted(glob.glob(PYDATA)):
        with open(path, "rb") as f:
            out.append(("py-" + os.path.basename(path)[:-4], f.read()))
    return out


def corpus(samples=True):
    """[(name, bytes)] of every shape, the built ones first."""
    out = [(name, make()) for name, make in BUILT]
    if samples:
        out += python_samples()
    return out


def flags_of(i):
    return FLAG_CYCLE[i % len(FLAG_CYCLE)]


def deliver_corpus(tbdir, user, folder, side, start_when, messages=None):
    """Puts the corpus (or messages) into folder on one side's Maildir:
    message i at internal date start_when + 60 i, with the Maildir flags
    flags_of(i) (no flags: left in new/, so \\Recent).  Delivering the
    same corpus to both sides with the same start_when gives each message
    the same date and flags on both.  Returns [(name, when, flags)]."""
    messages = corpus() if messages is None else messages
    out = []
    for i, (name, data) in enumerate(messages):
        when = start_when + 60 * i
        flags = flags_of(i)
        path = tb.deliver(tbdir, side, user, folder, data, seen=bool(flags),
                          when=when)
        if flags and flags != "S":
            os.rename(path, path[:path.rindex(":2,")] + ":2," + flags)
        out.append((name, when, flags))
    return out
