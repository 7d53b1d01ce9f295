"""The messages a checking session appends, and what each part of them must
read back as: the whole message, its header, its text, its numbered parts
and chosen header fields, byte for byte.
"""

import base64
import email.utils

WORDS = ["report", "予算", "meeting", "draft", "invoice", "議事録", "lunch",
         "review", "seminar", "出張", "schedule", "patch"]


class Mail:
    """One message: raw bytes and the sections a FETCH may ask for."""

    def __init__(self, raw, mid, subject, parts):
        self.raw = raw
        self.mid = mid                  # '<...>'
        self.subject = subject          # ASCII, as in the header
        end = raw.index(b"\r\n\r\n") + 4
        self.header = raw[:end]
        self.text = raw[end:]
        self.parts = parts              # BODY[1], BODY[2], ... contents

    def header_fields(self, names):
        """BODY[HEADER.FIELDS (names)]: the matching lines in message order
        and the blank line (every header here is one line)."""
        want = {n.lower() for n in names}
        lines = [l for l in self.header[:-2].split(b"\r\n")[:-1]
                 if l.split(b":", 1)[0].decode().lower() in want]
        return b"".join(l + b"\r\n" for l in lines) + b"\r\n"

    def section(self, spec):
        """Expected bytes of BODY[spec] (spec upper-case, no partial), or
        None when this module cannot tell."""
        if spec == "":
            return self.raw
        if spec == "HEADER":
            return self.header
        if spec == "TEXT":
            return self.text
        if spec.isdigit() and 1 <= int(spec) <= len(self.parts):
            return self.parts[int(spec) - 1]
        if spec.startswith("HEADER.FIELDS (") and spec.endswith(")"):
            return self.header_fields(spec[15:-1].split())
        return None


def make_mail(rng, tag, k, user, big=False):
    """Message number k of the session whose tag is `tag` ('run-sN')."""
    mid = f"<lc-{tag}-{k}@loadcheck.invalid>"
    subject = (f"loadcheck {tag}-{k} "
               f"{rng.choice([w for w in WORDS if w.isascii()])} "
               f"{rng.randrange(10**6)}")
    when = 1700000000 + rng.randrange(10**7)
    head = [f"Message-ID: {mid}",
            f"Date: {email.utils.formatdate(when)}",
            f"From: Load Check <loadcheck{rng.randrange(7)}@example.ac.jp>",
            f"To: {user} <{user}@example.ac.jp>, Other <other@example.ac.jp>",
            f"Subject: {subject}",
            "MIME-Version: 1.0"]
    lines = [f"Line {i} of message {k} for {tag}: "
             + " ".join(rng.choice(WORDS[::3]) for _ in range(6))
             for i in range(rng.randrange(2, 12))]
    if big:
        # Over imapmerge's 32 kB streaming threshold for a FETCH literal
        # and, sometimes, its 64 kB one for an APPEND.
        n = rng.randrange(500, 1000)
        lines += [f"{i:05d} " + "The quick brown fox jumps over the lazy dog."
                  for i in range(n)]
    text = "".join(l + "\r\n" for l in lines).encode()
    if rng.random() < 0.4:
        b = f"lc-{tag}-{k}-b"
        size = rng.randrange(30, 300)
        attach = base64.encodebytes(bytes(rng.randrange(256)
                                          for _ in range(size)))
        attach = attach.replace(b"\n", b"\r\n")
        head.append(f'Content-Type: multipart/mixed; boundary="{b}"')
        p1 = text
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                .encode() + p1 +
                f"\r\n--{b}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n".encode() +
                attach + f"\r\n--{b}--\r\n".encode())
        parts = [p1, attach]
    else:
        head.append("Content-Type: text/plain; charset=utf-8")
        body = text
        parts = [text]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    return Mail(raw, mid, subject, parts)
