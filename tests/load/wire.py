"""IMAP server responses, read and checked against RFC 3501's grammar.

`read_response` reads one whole response (a line and the literals it
announces) from an asyncio stream; `parse_response` checks it strictly and
returns a `Response`.  Whatever does not follow the grammar raises
`Malformed` with the place where it went wrong.

Strings come back as `Str` (bytes), atoms and numbers as `Atom` (bytes), NIL
as None, parenthesised lists as Python lists.  Where the grammar joins lists
with no space between them (the parts of a multipart body, the addresses of
an address list: `)(`), the parser expects exactly that.
"""

import re

MAX_NUMBER = 4294967295
MAX_MODSEQ = (1 << 63) - 1
_DIGITS = re.compile(rb"\d+")
_NAME = re.compile(rb"[A-Za-z0-9.]+")
LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r\n\Z")
# RFC 3501 atom-specials: ( ) { SP CTL % * " \ ]
_ATOM_STOP = set(b'(){ %*"\\]') | set(range(0, 32)) | {127}
DATE_TIME = re.compile(
    rb'^[ \d]\d-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{4} '
    rb'\d\d:\d\d:\d\d [+-]\d{4}$')


class Malformed(Exception):
    pass


class Atom(bytes):
    pass


class Str(bytes):
    pass


async def read_response(reader):
    """One response's bytes: a line and, for every literal its line ends
    with, the literal and the rest.  Raises ConnectionError at EOF."""
    parts = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed by the server")
        parts.append(line)
        if not line.endswith(b"\n"):
            raise ConnectionError("connection closed inside a line")
        m = LITERAL_AT_END.search(line)
        if not m:
            return b"".join(parts)
        parts.append(await reader.readexactly(int(m.group(1))))


class Response:
    """kind: 'untagged', 'tagged' or 'continuation'.
    tagged/untagged status responses: status (OK NO BAD BYE PREAUTH),
    code (name, value) or None, text.  Untagged data: name (EXISTS, FETCH,
    SEARCH, ...), number (for `* n NAME`), data (parsed)."""

    def __init__(self, raw, kind, tag=None, name=None, number=None,
                 data=None, status=None, code=None, text=None):
        self.raw, self.kind, self.tag = raw, kind, tag
        self.name, self.number, self.data = name, number, data
        self.status, self.code, self.text = status, code, text

    def short(self, limit=300):
        s = self.raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(s) <= limit:
            return s
        return s[:limit] + f"...({len(self.raw)} bytes)"


class Parser:
    def __init__(self, b):
        self.b = b
        self.i = 0

    # ------------------------------------------------------------ tokens

    def fail(self, what):
        near = self.b[max(0, self.i - 30):self.i + 30]
        raise Malformed(f"{what} at offset {self.i} near {near!r}")

    def peek(self, n=1):
        return self.b[self.i:self.i + n]

    def at(self, s):
        return self.b.startswith(s, self.i)

    def expect(self, s, what=None):
        if not self.b.startswith(s, self.i):
            self.fail(what or f"expected {s!r}")
        self.i += len(s)

    def sp(self):
        self.expect(b" ", "expected one space")

    def end(self):
        self.expect(b"\r\n", "expected CRLF")
        if self.i != len(self.b):
            self.fail("bytes after CRLF")

    def atom(self, extra=b""):
        start = self.i
        b = self.b
        n = len(b)
        while self.i < n and (b[self.i] not in _ATOM_STOP
                              or b[self.i] in extra) and b[self.i] < 128:
            self.i += 1
        if self.i == start:
            self.fail("expected an atom")
        return Atom(b[start:self.i])

    def number(self, nz=False, limit=MAX_NUMBER):
        m = _DIGITS.match(self.b, self.i)
        if not m:
            self.fail("expected a number")
        self.i = m.end()
        v = int(m.group(0))
        if v > limit or (nz and v == 0):
            self.fail(f"number {v} out of range")
        return v

    def quoted(self):
        self.expect(b'"')
        out = bytearray()
        b = self.b
        while True:
            if self.i >= len(b):
                self.fail("unterminated quoted string")
            c = b[self.i]
            if c == 0x22:
                self.i += 1
                return Str(bytes(out))
            if c == 0x5c:
                nxt = b[self.i + 1:self.i + 2]
                if nxt not in (b'"', b"\\"):
                    self.fail("bad escape in quoted string")
                out += nxt
                self.i += 2
                continue
            if c in (0x0d, 0x0a, 0):
                self.fail("CR, LF or NUL in quoted string")
            if c >= 128:
                self.fail("8-bit byte in quoted string")
            out.append(c)
            self.i += 1

    def literal(self):
        self.expect(b"{")
        n = self.number()
        self.expect(b"}\r\n", "expected }CRLF after literal length")
        if self.i + n > len(self.b):
            self.fail("literal shorter than announced")
        data = self.b[self.i:self.i + n]
        if b"\0" in data:
            self.fail("NUL in literal")
        self.i += n
        return Str(data)

    def string(self):
        c = self.peek()
        if c == b'"':
            return self.quoted()
        if c == b"{":
            return self.literal()
        self.fail("expected a string")

    def nstring(self):
        if self.at(b"NIL"):
            self.i += 3
            return None
        return self.string()

    def astring(self):
        c = self.peek()
        if c in (b'"', b"{"):
            return self.string()
        return self.atom(extra=b"]")

    def flag(self, perm=False):
        if self.at(b"\\"):
            self.i += 1
            if perm and self.at(b"*"):
                self.i += 1
                return "\\*"
            return "\\" + self.atom().decode()
        return self.atom().decode()

    def flag_list(self, perm=False):
        self.expect(b"(")
        out = []
        if not self.at(b")"):
            out.append(self.flag(perm))
            while self.at(b" "):
                self.i += 1
                out.append(self.flag(perm))
        self.expect(b")", "expected ) closing a flag list")
        return out

    def value(self):
        """Any value: list, string, NIL, atom (generic data)."""
        c = self.peek()
        if c == b"(":
            return self.generic_list()
        if c in (b'"', b"{"):
            return self.string()
        if self.at(b"NIL") and \
                self.b[self.i + 3:self.i + 4] in (b" ", b")", b"\r"):
            self.i += 3
            return None
        if c == b"\\":
            return Atom(self.flag().encode())
        return self.atom()

    def generic_list(self):
        self.expect(b"(")
        out = []
        if not self.at(b")"):
            out.append(self.value())
            while self.at(b" "):
                self.i += 1
                out.append(self.value())
        self.expect(b")", "expected ) or a space in a list")
        return out

    # ---------------------------------------------------------- ENVELOPE

    def address(self):
        self.expect(b"(")
        parts = [self.nstring()]
        for _ in range(3):
            self.sp()
            parts.append(self.nstring())
        self.expect(b")", "expected ) closing an address")
        return parts

    def address_list(self):
        if self.at(b"NIL"):
            self.i += 3
            return None
        self.expect(b"(")
        out = [self.address()]
        while self.at(b"("):          # addresses are joined: ")("
            out.append(self.address())
        self.expect(b")", "expected ) closing an address list")
        return out

    def envelope(self):
        self.expect(b"(")
        date = self.nstring()
        self.sp()
        subject = self.nstring()
        addrs = []
        for _ in range(6):
            self.sp()
            addrs.append(self.address_list())
        self.sp()
        in_reply_to = self.nstring()
        self.sp()
        message_id = self.nstring()
        self.expect(b")", "expected ) closing the envelope")
        return [date, subject] + addrs + [in_reply_to, message_id]

    # ------------------------------------------------------ BODYSTRUCTURE

    def body_fld_param(self):
        if self.at(b"NIL"):
            self.i += 3
            return None
        self.expect(b"(")
        out = [self.string()]
        self.sp()
        out.append(self.string())
        while self.at(b" "):
            self.i += 1
            out.append(self.string())
            self.sp()
            out.append(self.string())
        self.expect(b")", "expected ) closing body parameters")
        return out

    def body_fld_dsp(self):
        if self.at(b"NIL"):
            self.i += 3
            return None
        self.expect(b"(")
        kind = self.string()
        self.sp()
        params = self.body_fld_param()
        self.expect(b")")
        return [kind, params]

    def body_fld_lang(self):
        if self.at(b"("):
            self.i += 1
            out = [self.string()]
            while self.at(b" "):
                self.i += 1
                out.append(self.string())
            self.expect(b")")
            return out
        return self.nstring()

    def body_extension(self):
        if self.at(b"("):
            self.i += 1
            out = [self.body_extension()]
            while self.at(b" "):
                self.i += 1
                out.append(self.body_extension())
            self.expect(b")")
            return out
        if self.peek().isdigit():
            return self.number()
        return self.nstring()

    def _ext_tail(self):
        """[SP dsp [SP lang [SP loc *(SP extension)]]] after md5/params."""
        if not self.at(b" "):
            return
        self.i += 1
        self.body_fld_dsp()
        if not self.at(b" "):
            return
        self.i += 1
        self.body_fld_lang()
        if not self.at(b" "):
            return
        self.i += 1
        self.nstring()
        while self.at(b" "):
            self.i += 1
            self.body_extension()

    def body(self, depth=0):
        if depth > 50:
            self.fail("body nested too deep")
        self.expect(b"(")
        if self.at(b"("):
            parts = [self.body(depth + 1)]
            while self.at(b"("):      # parts are joined: ")("
                parts.append(self.body(depth + 1))
            self.sp()
            subtype = self.string()
            if self.at(b" "):
                self.i += 1
                self.body_fld_param()
                self._ext_tail()
            self.expect(b")", "expected ) closing a multipart body")
            return {"parts": parts, "subtype": subtype}
        mtype = self.string()
        self.sp()
        subtype = self.string()
        self.sp()
        params = self.body_fld_param()
        self.sp()
        self.nstring()                 # id
        self.sp()
        self.nstring()                 # description
        self.sp()
        self.string()                  # encoding
        self.sp()
        size = self.number()
        out = {"type": mtype, "subtype": subtype, "params": params,
               "size": size}
        if mtype.upper() == b"MESSAGE" and subtype.upper() == b"RFC822":
            self.sp()
            out["envelope"] = self.envelope()
            self.sp()
            out["body"] = self.body(depth + 1)
            self.sp()
            out["lines"] = self.number()
        elif mtype.upper() == b"TEXT":
            self.sp()
            out["lines"] = self.number()
        if self.at(b" "):
            self.i += 1
            self.nstring()             # md5
            self._ext_tail()
        self.expect(b")", "expected ) closing a body part")
        return out

    # ------------------------------------------------------------- FETCH

    def section(self):
        """After 'BODY' or 'BINARY': [section]<partial>; returns the text."""
        start = self.i
        self.expect(b"[")
        depth = 0
        while True:
            if self.i >= len(self.b):
                self.fail("unterminated section")
            c = self.b[self.i]
            if c in (0x0d, 0x0a):
                self.fail("CR/LF in a section")
            self.i += 1
            if c == 0x28:
                depth += 1
            elif c == 0x29:
                depth -= 1
            elif c == 0x5d and depth == 0:
                break
        if self.at(b"<"):
            self.i += 1
            self.number()
            self.expect(b">")
        return self.b[start:self.i].decode("ascii", "replace")

    def msg_att(self):
        self.expect(b"(", "expected ( opening FETCH data")
        out = {}
        while True:
            m = _NAME.match(self.b, self.i)
            if not m:
                self.fail("expected a FETCH item name")
            self.i = m.end()
            name = m.group(0).decode().upper()
            if name in ("BODY", "BINARY", "BINARY.SIZE") and self.at(b"["):
                name += self.section().upper()
            if name in out:
                self.fail(f"FETCH item {name} twice")
            self.sp()
            if name == "FLAGS":
                out[name] = self.flag_list()
            elif name == "UID":
                out[name] = self.number(nz=True)
            elif name in ("RFC822.SIZE",) or name.startswith("BINARY.SIZE"):
                out[name] = self.number()
            elif name == "INTERNALDATE":
                v = self.quoted()
                if not DATE_TIME.match(v):
                    self.fail(f"bad INTERNALDATE {v!r}")
                out[name] = v
            elif name == "ENVELOPE":
                out[name] = self.envelope()
            elif name in ("BODY", "BODYSTRUCTURE"):
                out[name] = self.body()
            elif name.startswith(("BODY[", "BINARY[")) or name in (
                    "RFC822", "RFC822.HEADER", "RFC822.TEXT"):
                out[name] = self.nstring()
            elif name == "MODSEQ":
                self.expect(b"(")
                out[name] = self.number(limit=MAX_MODSEQ)
                self.expect(b")")
            else:
                self.fail(f"unknown FETCH item {name}")
            if self.at(b")"):
                self.i += 1
                return out
            self.sp()

    # ------------------------------------------------------- resp-text

    def resp_text(self):
        """[code] text; returns ((name, value) or None, text)."""
        code = None
        if self.at(b"["):
            self.i += 1
            name = self.atom().decode().upper()
            value = None
            if name == "PERMANENTFLAGS":
                self.sp()
                value = self.flag_list(perm=True)
            elif name in ("UIDNEXT", "UIDVALIDITY", "UNSEEN",
                          "HIGHESTMODSEQ"):
                self.sp()
                value = self.number(nz=True, limit=MAX_MODSEQ
                                    if name == "HIGHESTMODSEQ" else MAX_NUMBER)
            elif name == "APPENDUID":
                self.sp()
                v = self.number(nz=True)
                self.sp()
                value = (v, self.atom().decode())
            elif name == "COPYUID":
                self.sp()
                v = self.number(nz=True)
                self.sp()
                src = self.atom().decode()
                self.sp()
                value = (v, src, self.atom().decode())
            elif name in ("CAPABILITY",):
                self.sp()
                value = [self.atom().decode()]
                while self.at(b" "):
                    self.i += 1
                    value.append(self.atom().decode())
            elif self.at(b" "):
                self.i += 1
                start = self.i
                while self.i < len(self.b) and self.b[self.i] not in b"]\r\n":
                    self.i += 1
                value = self.b[start:self.i].decode("utf-8", "replace")
            self.expect(b"]", "expected ] closing a response code")
            code = (name, value)
            self.sp()
        start = self.i
        while self.i < len(self.b) and self.b[self.i] not in b"\r\n":
            self.i += 1
        text = self.b[start:self.i]
        if not text and code is None:
            self.fail("empty response text")
        return code, text.decode("utf-8", "replace")


def parse_seqset(s):
    """'1:3,7' -> [1, 2, 3, 7] (for APPENDUID/COPYUID sets, in order)."""
    out = []
    for part in s.split(","):
        if ":" in part:
            a, b = part.split(":")
            a, b = int(a), int(b)
            step = 1 if b >= a else -1
            out.extend(range(a, b + step, step))
        else:
            out.append(int(part))
    return out


def parse_response(raw):
    """A whole response (from read_response) -> Response, or Malformed."""
    p = Parser(raw)
    if p.at(b"+"):
        p.i += 1
        if p.at(b" "):
            p.i += 1
        while p.i < len(raw) and raw[p.i] not in b"\r\n":
            p.i += 1
        p.end()
        return Response(raw, "continuation")
    if p.at(b"* "):
        p.i += 2
        if p.peek().isdigit():
            n = p.number()
            p.sp()
            name = p.atom().decode().upper()
            data = None
            if name == "FETCH":
                if n == 0:
                    p.fail("FETCH of message 0")
                p.sp()
                data = p.msg_att()
            elif name == "EXPUNGE":
                if n == 0:
                    p.fail("EXPUNGE of message 0")
            elif name not in ("EXISTS", "RECENT"):
                p.fail(f"unknown numbered response {name}")
            p.end()
            return Response(raw, "untagged", name=name, number=n, data=data)
        name = p.atom().decode().upper()
        if name in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
            p.sp()
            code, text = p.resp_text()
            p.end()
            return Response(raw, "untagged", name=name, status=name,
                            code=code, text=text)
        if name == "FLAGS":
            p.sp()
            data = p.flag_list()
        elif name == "SEARCH":
            data = []
            while p.at(b" "):
                p.i += 1
                if p.at(b"("):        # (MODSEQ n) after the numbers
                    p.generic_list()
                    break
                data.append(p.number(nz=True))
        elif name == "CAPABILITY":
            data = []
            while p.at(b" "):
                p.i += 1
                data.append(p.atom().decode())
            if not data:
                p.fail("empty CAPABILITY")
        elif name in ("LIST", "LSUB"):
            p.sp()
            flags = p.flag_list()
            p.sp()
            if p.at(b"NIL"):
                p.i += 3
                delim = None
            else:
                delim = p.quoted()
                if len(delim) != 1:
                    p.fail("hierarchy delimiter of more than one character")
            p.sp()
            mbox = p.astring()
            if p.at(b" "):
                p.i += 1
                p.generic_list()
            data = (flags, delim, mbox)
        elif name == "STATUS":
            p.sp()
            mbox = p.astring()
            p.sp()
            p.expect(b"(")
            items = {}
            while not p.at(b")"):
                item = p.atom().decode().upper()
                p.sp()
                items[item] = p.number()
                if p.at(b" "):
                    p.i += 1
            p.expect(b")")
            data = (mbox, items)
        elif name in ("ENABLED",):
            data = []
            while p.at(b" "):
                p.i += 1
                data.append(p.atom().decode())
        elif name in ("ID", "NAMESPACE"):
            data = []
            while p.at(b" "):
                p.i += 1
                data.append(p.value())
        else:
            p.fail(f"unknown untagged response {name}")
        p.end()
        return Response(raw, "untagged", name=name, data=data)
    m = _NAME.match(raw)
    if not m:
        p.fail("expected *, + or a tag")
    p.i = m.end()
    tag = m.group(0).decode()
    p.sp()
    status = p.atom().decode().upper()
    if status not in ("OK", "NO", "BAD"):
        p.fail(f"tagged status {status}")
    p.sp()
    code, text = p.resp_text()
    p.end()
    return Response(raw, "tagged", tag=tag, status=status, code=code,
                    text=text)
