"""The differential conformance harness (docs/conformance.md).

A script (tests/conformance/*.txt) is run twice on raw IMAP connections:
once against the test bed's new Dovecot directly, once through imapmerge,
each side with its own test user holding the same messages.  Both
transcripts are normalised, then compared command by command; every
difference must match a row of the table in docs/conformance.md.

Script lines (the file format is described in docs/conformance.md too):

    # comment                  ignored, as are blank lines
    COMMAND ARGS               sent with a tag; everything up to its tagged
                               answer is its transcript
    !RAW LINE                  sent as it is, no tag; a CAPABILITY after it
                               marks the end of its transcript
    IDLE                       IDLE; the indented lines after it run while
        @other COMMAND         idling: a command on the second connection,
        @wait REGEX            wait (3 s at most) for a line matching REGEX,
        @done TEXT             what ends the IDLE (default DONE)
    @other COMMAND             a command on a second connection of the same
                               user, which has {box} selected
    @reconnect [nologin]       a fresh connection, logged in unless nologin

Placeholders, expanded per side:
    {box} {other}              the script's folder and a second one
    {user} {pass} {plain}      the side's user, password, SASL PLAIN blob
    {uid:N}                    the UID of the N-th message of {box} at start
    {mid:N}                    the Message-ID of the N-th message of {box}
    {lit:TEXT} {lit+:TEXT}     TEXT as a synchronising / non-synchronising
                               literal
    {msg:NAME} {msg+:NAME}     message NAME of messages.APPENDS as a literal
    \\r\\n                     a line end inside one command (hand-made
                               literals and the like)
"""

import base64
import datetime
import difflib
import glob
import os
import re
import socket
import ssl
import time

import messages

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOC = os.path.join(ROOT, "docs", "conformance.md")
TIMEOUT = 8.0           # seconds a command may take before it counts as lost
WAIT = 3.0              # seconds an @wait waits for news during IDLE


class Closed(Exception):
    pass


# ---------------------------------------------------------------- wire

class Conn:
    """One raw IMAP connection over TLS.  A response is read as a
    `Response`: its text with each literal replaced by a marker, and the
    literals' bytes beside it."""

    def __init__(self, ctx, port):
        raw = socket.create_connection(("localhost", port), timeout=TIMEOUT)
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.closed = False

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError:
            self.closed = True
            raise Closed()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.s.settimeout(left)
        try:
            chunk = self.s.recv(65536)
        except (socket.timeout, ssl.SSLError):
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed()
        self.buf += chunk
        return True

    def read(self, deadline):
        """One response (with its literals), or None at the deadline."""
        text, lits = b"", []
        while True:
            while b"\r\n" not in self.buf:
                if not self._fill(deadline):
                    return None
            line, _, self.buf = self.buf.partition(b"\r\n")
            m = re.search(rb"~?\{(\d+)\}$", line)
            if not m:
                return Response(text + line, lits)
            n = int(m.group(1))
            while len(self.buf) < n:
                if not self._fill(deadline):
                    return None
            lits.append(self.buf[:n])
            self.buf = self.buf[n:]
            text += line + b"\x00%d\x00" % (len(lits) - 1)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Response:
    def __init__(self, text, lits):
        self.raw = text
        self.lits = lits
        self.text = text.decode("utf-8", "backslashreplace")


# ---------------------------------------------------------------- scripts

class Step:
    def __init__(self, kind, line, lineno, actions=()):
        self.kind = kind          # cmd, raw, other, idle, reconnect
        self.line = line          # as written in the script
        self.lineno = lineno
        self.actions = list(actions)   # IDLE: (kind, arg)

    def label(self):
        return {"raw": "!", "other": "@other "}.get(self.kind, "") + \
            self.line


def load_script(path):
    steps = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        raw = lines[i].rstrip()
        i += 1
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if raw[:1].isspace():
            raise ValueError(f"{path}:{i}: indented line outside IDLE")
        if line.startswith("@reconnect"):
            steps.append(Step("reconnect", line, i))
        elif line.startswith("@other "):
            steps.append(Step("other", line[7:], i))
        elif line.startswith("@"):
            raise ValueError(f"{path}:{i}: unknown directive {line}")
        elif line.startswith("!"):
            steps.append(Step("raw", line[1:], i))
        elif line.upper() == "IDLE" or line.upper().startswith("IDLE "):
            step = Step("idle", line, i)
            while i < len(lines) and lines[i][:1].isspace():
                act = lines[i].strip()
                i += 1
                if not act or act.startswith("#"):
                    continue
                word, _, arg = act.partition(" ")
                if word not in ("@other", "@wait", "@done"):
                    raise ValueError(f"{path}:{i}: {act} inside IDLE")
                step.actions.append((word[1:], arg))
            steps.append(step)
        else:
            steps.append(Step("cmd", line, i))
    return steps


def scripts():
    return sorted(glob.glob(os.path.join(HERE, "*.txt")))


def count_commands(steps):
    n = 0
    for s in steps:
        if s.kind in ("cmd", "raw", "other"):
            n += 1
        elif s.kind == "idle":
            n += 1 + sum(1 for k, _ in s.actions if k == "other")
    return n


# ---------------------------------------------------------------- a side

class Side:
    """One of the two places a script runs: `direct` (the new Dovecot) or
    `imapmerge`; its own user, its folders, and what it learned of UIDs."""

    def __init__(self, name, ctx, port, user, password, box, other):
        self.name = name
        self.ctx = ctx
        self.port = port
        self.user = user
        self.password = password
        self.box = box
        self.other = other
        self.maps = {}            # folder -> {uid: label}
        self.first = {}           # folder -> highest UID before the script
        self.observer = None      # the connection survey() reads on
        self.start = []           # (uid, message-id) of {box} at start

    # -- helper connection: what a folder holds, by UID
    def connect(self, login=True):
        c = Conn(self.ctx, self.port)
        greeting = c.read(time.monotonic() + TIMEOUT)
        if greeting is None:
            raise RuntimeError(f"{self.name}: no greeting")
        if login:
            ans = self.simple(c, f"LOGIN {self.user} {self.password}")
            if not ans[-1].text.split()[1] == "OK":
                raise RuntimeError(f"{self.name}: login failed")
        return c, greeting

    def simple(self, c, line, tag="h"):
        c.send(f"{tag} {line}\r\n".encode())
        out = []
        deadline = time.monotonic() + TIMEOUT
        while True:
            r = c.read(deadline)
            if r is None:
                raise RuntimeError(f"{self.name}: no answer to {line}")
            out.append(r)
            if r.text.startswith(tag + " "):
                return out

    def survey(self, last=False):
        """Reads which message each UID of {box} and {other} is, on a
        connection of its own that waits, logged in with nothing
        selected, from the first survey to the last."""
        if self.observer is None:
            self.observer, _ = self.connect()
        c = self.observer
        try:
            for folder in (self.box, self.other):
                ans = self.simple(c, f"EXAMINE {quote(folder)}")
                if ans[-1].text.split()[1] != "OK":
                    continue
                ans = self.simple(c, "UID FETCH 1:* (UID BODY.PEEK[HEADER."
                                  "FIELDS (MESSAGE-ID SUBJECT)])")
                got = []
                for r in ans[:-1]:
                    m = re.search(r"UID (\d+)", r.text)
                    if m and r.lits:
                        got.append((int(m.group(1)), r.lits[-1]))
                got.sort()
                fmap = self.maps.setdefault(folder, {})
                for uid, hdr in got:
                    if uid not in fmap:
                        self.learn(folder, uid, identity(hdr))
                if folder == self.box and not self.start:
                    self.start = [(uid, message_id(hdr)) for uid, hdr in got]
                self.first.setdefault(folder, max((u for u, _ in got),
                                                  default=0))
            self.simple(c, "UNSELECT")
            if last:
                self.simple(c, "LOGOUT")
        finally:
            if last:
                c.close()
                self.observer = None

    def learn(self, folder, uid, label):
        fmap = self.maps.setdefault(folder, {})
        if uid in fmap:
            return
        taken = set(fmap.values())
        name, n = label, 1
        while name in taken:
            n += 1
            name = f"{label}'{n}"
        fmap[uid] = name

    # -- placeholders
    def expand(self, line):
        """The bytes of a script line on this side (command() cuts them
        where a synchronising literal must wait for the server's "+")."""
        def sub(m):
            key, _, arg = m.group(1).partition(":")
            if key == "box":
                return quote(self.box)
            if key == "other":
                return quote(self.other)
            if key == "user":
                return self.user
            if key == "pass":
                return self.password
            if key == "plain":
                return base64.b64encode(
                    f"\0{self.user}\0{self.password}".encode()).decode()
            if key == "uid":
                return str(self.start[int(arg) - 1][0])
            if key == "mid":
                return self.start[int(arg) - 1][1]
            if key == "rep":
                count, _, what = arg.partition(":")
                return what * int(count)
            if key in ("lit", "lit+"):
                arg = arg.replace("\\r\\n", "\r\n")
                return "{%d%s}\r\n" % (len(arg.encode()), key[3:]) + arg
            if key in ("msg", "msg+"):
                data = messages.APPENDS[arg].decode("ascii")
                return "{%d%s}\r\n" % (len(data), key[3:]) + data
            raise ValueError("unknown placeholder {%s}" % m.group(1))

        # Names first, so that a literal may hold one: {lit:{box}}.
        text = re.sub(r"\{((?:box|other|user|pass|plain|uid|mid|rep)"
                      r"(?::[^{}]*)?)\}", sub, line)
        text = re.sub(r"\{((?:lit\+?|msg\+?)(?::[^{}]*)?)\}", sub, text)
        return text.replace("\\r\\n", "\r\n").encode("utf-8")


def quote(name):
    if re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def message_id(header):
    m = re.search(rb"Message-ID:\s*(<[^>]*>)", header, re.I)
    return m.group(1).decode() if m else None


def identity(header):
    """A message's name: from its Message-ID (messages.LABELS, or the
    seeded number), else from its subject."""
    mid = message_id(header)
    if mid:
        if mid in messages.LABELS:
            return messages.LABELS[mid]
        m = re.match(r"<seed-(\d+)-", mid)
        if m:
            return f"seed{int(m.group(1)) % 100000}"
        return mid
    subj = re.search(rb"Subject:\s*(.*)", header, re.I)
    text = subj.group(1).decode("utf-8", "replace").strip() if subj else ""
    return "subject:" + re.sub(r"\s+", "_", text)


# ---------------------------------------------------------------- running

class Record:
    """What one side answered to one step."""

    def __init__(self, step, sent, responses, note=None, selected=None,
                 marks=(), tag=None):
        self.step = step
        self.opened_with = None       # @other: the count its SELECT gave
        self.sent = sent              # the expanded command text
        self.responses = responses    # [Response]
        self.note = note              # "<no answer>", "<connection closed>"
        self.selected = selected      # folder selected when it ran
        self.marks = list(marks)      # indexes where IDLE's DONE went
        self.tag = tag


def run(side, steps):
    """Runs a script on one side; the records, in step order."""
    try:
        return _run(side, steps)
    finally:
        if side.observer is not None:
            side.observer.close()
            side.observer = None


def _run(side, steps):
    side.survey()
    # login: whether a new connection logs in (the last @reconnect says;
    # a connection the server closed is opened again the same way).
    state = {"conn": None, "other": None, "tag": 0, "selected": None,
             "login": True}
    records = []
    appended = []                 # (folder, uid, name) from APPENDUID

    def main():
        if state["conn"] is None or state["conn"].closed:
            if state["conn"] is not None:
                state["conn"].close()
            state["conn"], greeting = side.connect(state["login"])
            state["selected"] = None
            return state["conn"], greeting
        return state["conn"], None

    def other():
        if state["other"] is None or state["other"].closed:
            c, _ = side.connect()
            ans = side.simple(c, f"SELECT {quote(side.box)}", tag="o")
            state["other"] = c
            # What it knows: for the normaliser (news_order).
            state["other_count"] = next(
                (int(r.text.split()[1]) for r in ans
                 if re.match(r"\* \d+ EXISTS$", r.text)), None)
        return state["other"]

    def next_tag():
        state["tag"] += 1
        return "t%d" % state["tag"]

    def command(conn, data, tag, raw=False):
        """Sends one command (waiting at each synchronising literal) and
        reads to its end; (responses, note)."""
        out = []
        # Up to and including each synchronising literal's "{n}\r\n",
        # then wait for the server's "+".
        full, parts, pos = data + b"\r\n", [], 0
        for m in re.finditer(rb"\{\d+\}\r\n", full):
            parts.append(full[pos:m.end()])
            pos = m.end()
        # A line that ends in a literal whose data the script does not
        # give: a "+" for it ends the command there.
        parts.append(full[pos:] if pos < len(full) else None)
        deadline = time.monotonic() + TIMEOUT
        try:
            for k, part in enumerate(parts):
                if part is None:
                    return out, "<literal wanted, none sent>"
                conn.send(part)
                if k == len(parts) - 1:
                    break
                while True:
                    r = conn.read(deadline)
                    if r is None:
                        return out, "<no answer>"
                    out.append(r)
                    if r.text.startswith("+"):
                        break
                    if r.text.startswith(tag + " ") or (
                            raw and r.text.startswith("* BAD")):
                        return out, None
            if raw:
                return raw_end(conn, data, out, deadline)
            while True:
                r = conn.read(deadline)
                if r is None:
                    return out, "<no answer>"
                out.append(r)
                if r.text.startswith(tag + " "):
                    return out, None
        except Closed:
            return out, "<connection closed>"

    def raw_end(conn, data, out, deadline):
        """A raw line may have no tag to wait for: a CAPABILITY after it
        marks the end of what it brought.  Dovecot runs pipelined commands
        side by side, so the raw line's own answer may come after the
        CAPABILITY's: up to a second more for it."""
        sync = next_tag()
        conn.send(f"{sync} CAPABILITY\r\n".encode())
        rawtag = data.split(b" ")[0].decode("utf-8", "replace")
        while True:
            r = conn.read(deadline)
            if r is None:
                return out, "<no answer>"
            if r.text.startswith(sync + " "):
                break
            out.append(r)

        def answered():
            return any(x.text.startswith((rawtag + " ", "* BAD", "* BYE"))
                       for x in out)
        until = time.monotonic() + 1.0
        while rawtag and not answered():
            r = conn.read(until)
            if r is None:
                break
            out.append(r)
        return [x for x in out if not x.text.startswith("* CAPABILITY")], \
            None

    def after(rec, tag, data):
        """What a command changed: the selection, the connection, an
        APPENDUID to learn once the folder has been read again."""
        ok = bool(rec.responses) and \
            rec.responses[-1].text.startswith(tag + " OK")
        words = data.split(b" ", 2)
        verb = words[0].upper() if words else b""
        if verb in (b"SELECT", b"EXAMINE"):
            arg = data.split(b" ", 1)[1].decode("utf-8", "replace") \
                if len(words) > 1 else ""
            # A failed SELECT leaves nothing selected (RFC 9051 §6.3.2).
            state["selected"] = unquote(arg.strip()) if ok else None
        elif verb in (b"CLOSE", b"UNSELECT") and ok:
            state["selected"] = None
        elif verb == b"LOGOUT" and ok:
            state["conn"].close()
            state["conn"] = None
        elif verb == b"APPEND" and ok:
            m = re.search(r"\[APPENDUID \d+ (\d+)\]",
                          rec.responses[-1].text)
            name = re.search(r"\{msg\+?:(\w+)\}", rec.step.line)
            if m and name:
                appended.append((unquote(words[1].decode()),
                                 int(m.group(1)), name.group(1)))

    try:
        main()
        for step in steps:
            if step.kind == "reconnect":
                if state["conn"] is not None:
                    state["conn"].close()
                    state["conn"] = None
                state["login"] = "nologin" not in step.line
                _, greeting = main()
                records.append(Record(step, b"", [greeting]))
                continue
            tag = next_tag()
            if step.kind == "other":
                data = side.expand(step.line)
                state["other_count"] = None
                resp, note = command(other(), tag.encode() + b" " + data,
                                     tag)
                rec = Record(step, data, resp, note, selected=side.box,
                             tag=tag)
                rec.opened_with = state["other_count"]
                records.append(rec)
                continue
            conn, _ = main()
            selected = state["selected"]
            if step.kind == "idle":
                rec = idle(side, conn, step, tag, other, next_tag, command)
                rec.selected = selected
                rec.tag = tag
            else:
                data = side.expand(step.line)
                line = data if step.kind == "raw" else \
                    tag.encode() + b" " + data
                resp, note = command(conn, line, tag, raw=step.kind == "raw")
                rec = Record(step, data, resp, note, selected=selected,
                             tag=tag)
                if step.kind == "cmd":
                    after(rec, tag, data)
            records.append(rec)
            if rec.note and state["conn"] is not None:
                state["conn"].close()
                state["conn"] = None
    finally:
        for key in ("conn", "other"):
            if state[key] is not None:
                state[key].close()
    # A FETCH that shows both a UID and its message's Message-ID says
    # which message that UID is (the server's own word, in its order).
    for rec in records:
        for r in rec.responses:
            m = re.match(r"\* \d+ FETCH .*\bUID (\d+)", r.text)
            if m and rec.selected and any(
                    message_id(lit) for lit in r.lits):
                mid = next(message_id(lit) for lit in r.lits
                           if message_id(lit))
                side.learn(rec.selected, int(m.group(1)),
                           identity(b"Message-ID: " + mid.encode()))
    side.survey(last=True)
    # Only now: an APPENDUID must not name its message by itself.
    for folder, uid, name in appended:
        side.learn(folder, uid, name)
    return records


def idle(side, conn, step, tag, other, next_tag, command):
    out, marks, note = [], [], None
    deadline = time.monotonic() + TIMEOUT
    done = "DONE"
    try:
        conn.send(f"{tag} {step.line}\r\n".encode())
        r = conn.read(deadline)
        if r is None:
            return Record(step, step.line.encode(), out, "<no answer>")
        out.append(r)
        if not r.text.startswith("+"):
            return Record(step, step.line.encode(), out)
        for kind, arg in step.actions:
            if kind == "other":
                t = next_tag()
                resp, n = command(other(), t.encode() + b" " +
                                  side.expand(arg), t)
                if n or not resp or " OK" not in resp[-1].text[:8]:
                    out.append(Response(b"(@other " + arg.encode() +
                                        b": failed)", []))
            elif kind == "wait":
                until = time.monotonic() + WAIT
                while True:
                    r = conn.read(until)
                    if r is None:
                        break
                    out.append(r)
                    if re.search(arg, r.text):
                        break
            elif kind == "done":
                done = arg
        marks.append(len(out))
        conn.send(done.encode() + b"\r\n")
        while True:
            r = conn.read(deadline)
            if r is None:
                note = "<no answer>"
                break
            out.append(r)
            if r.text.startswith(tag + " "):
                break
    except Closed:
        note = "<connection closed>"
    return Record(step, step.line.encode(), out, note, marks=marks)


# ---------------------------------------------------------------- normalising

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]


class Normaliser:
    """Turns one side's records into comparable lines.  Each rule says why
    it may hide what it hides."""

    def __init__(self, side):
        self.side = side
        self.uidvalidity = {}          # (folder, value) -> name
        self.count = {}                # connection -> messages it knows
        self.top = {}                  # folder -> highest UID seen so far
        self.done = {}                 # id(record) -> its lines

    def uid(self, folder, n):
        self.top[folder] = max(self.top.get(folder, 0), n)
        fmap = self.side.maps.get(folder)
        if fmap and n in fmap:
            return "#" + fmap[n]
        return f"uid?{n}"

    def uidnext(self, folder, n):
        # UIDNEXT is each server's own number: shown as its distance from
        # the highest UID of that folder seen so far (before the script,
        # or in an answer before this one).
        top = max(self.top.get(folder, 0), self.side.first.get(folder, 0))
        return f"(max+{n - top})" if n > top else f"(max-{top - n})"

    def validity(self, folder, value):
        # UIDVALIDITY values are each server's own; what must hold is that
        # one folder keeps one value.  Named by folder and by order seen.
        key = (folder, value)
        if key not in self.uidvalidity:
            n = sum(1 for f, _ in self.uidvalidity if f == folder) + 1
            self.uidvalidity[key] = f"<{folder}>" + ("" if n == 1
                                                       else f"#{n}")
        return self.uidvalidity[key]

    def uidset(self, folder, text):
        out = []
        for part in text.split(","):
            a, _, b = part.partition(":")
            lo, hi = int(a), int(b or a)
            lo, hi = min(lo, hi), max(lo, hi)
            out.extend(range(lo, hi + 1))
        return out

    def lines(self, rec, tag):
        """The normalised lines of a record (worked out once, in order:
        the count of messages each connection knows runs along)."""
        if id(rec) not in self.done:
            self.done[id(rec)] = self._lines(rec, tag)
        return self.done[id(rec)]

    def _lines(self, rec, tag):
        side = self.side
        cmd = rec.sent.decode("utf-8", "replace")
        words = cmd.split()
        verb = " ".join(words[:2]).upper() if words[:1] and \
            words[0].upper() == "UID" else (words[0].upper() if words else "")
        target = None
        if verb in ("APPEND",):
            target = unquote(words[1]) if len(words) > 1 else None
        elif verb in ("COPY", "MOVE", "UID COPY", "UID MOVE"):
            target = unquote(words[-1]) if words else None
        elif verb in ("SELECT", "EXAMINE"):
            target = unquote(words[1]) if len(words) > 1 else None
        out = []
        for i, r in enumerate(rec.responses):
            if i in rec.marks:
                out.append("(DONE)")
            line = self.response(r, tag, verb, rec.selected, target)
            if line is None:
                continue
            out.extend(line)
        if len(rec.responses) in rec.marks:
            out.append("(DONE)")
        if rec.note:
            out.append(rec.note)
        out = sort_runs(out, r"\* (LIST|LSUB) ")
        conn = "other" if rec.step.kind == "other" else "main"
        if rec.step.kind == "reconnect":
            self.count[conn] = None
        if rec.opened_with is not None:
            self.count[conn] = rec.opened_with
        out = news_order(out, self.count.get(conn))
        for ln in out:
            m = re.match(r"\* (\d+) (EXISTS|EXPUNGE)$", ln)
            if m and m.group(2) == "EXISTS":
                self.count[conn] = int(m.group(1))
            elif m and self.count.get(conn):
                self.count[conn] -= 1
        if rec.note:
            self.count[conn] = None
        # Two accounts, one per side: the user name is the only thing
        # that differs between their messages (the seeded bodies name it).
        return [ln.replace(side.user, "{user}") for ln in out]

    def response(self, r, tag, verb, selected, target):
        t = r.text
        # Tags: both sides get the same tags; shown as TAG.
        if t.startswith(tag + " "):
            t = "TAG" + t[len(tag):]
        # Continuation requests: only that one came, not its text.
        if t.startswith("+"):
            return ["+"]
        # `* n RECENT`: imapmerge has no \Recent (IMAP4rev2 dropped it,
        # RFC 9051 §7.3.2 note); nothing to compare.
        if re.match(r"\* \d+ RECENT$", t):
            return None
        # HIGHESTMODSEQ / NOMODSEQ: CONDSTORE, which imapmerge does not
        # offer; Dovecot sends them unasked on SELECT.
        if re.match(r"\* OK \[(HIGHESTMODSEQ \d+|NOMODSEQ)\]", t):
            return None
        m = re.match(r"^(\S+) (OK|NO|BAD|BYE|PREAUTH)\b ?(.*)$", t, re.S)
        if m:
            # Status responses: status and response code only; the human
            # text after them is free (RFC 9051 §7.1).
            code = ""
            rest = m.group(3)
            if rest.startswith("["):
                end = rest.find("]")
                code = " [" + self.code(rest[1:end if end > 0 else None],
                                        verb, selected, target) + "]"
            return [f"{m.group(1)} {m.group(2)}{code}"]
        if re.match(r"\* CAPABILITY ", t):
            # Capabilities: each server lists its own (imapmerge offers
            # only what it implements itself, design §6).
            return ["* CAPABILITY (list)"]
        m = re.match(r"\* ID \(", t)
        if m:
            # ID: each server names itself.
            return ["* ID (server's own identification)"]
        m = re.match(r"\* STATUS (.*) \(([^()]*)\)$", t)
        if m:
            folder = unquote(m.group(1))
            items = m.group(2).split()
            pairs = []
            for k in range(0, len(items) - 1, 2):
                key, val = items[k].upper(), items[k + 1]
                if key == "UIDNEXT":
                    val = self.uidnext(folder, int(val))
                elif key == "UIDVALIDITY":
                    val = self.validity(folder, int(val))
                elif key == "RECENT":
                    val = "n"          # no \Recent in imapmerge (above)
                elif key == "HIGHESTMODSEQ":
                    val = "n"
                pairs.append(f"{items[k]} {val}")
            # STATUS items come in no set order (RFC 9051 §7.3.1).
            pairs.sort(key=str.upper)
            return [f"* STATUS {m.group(1)} ({' '.join(pairs)})"]
        if verb == "UID SEARCH" or verb == "UID SEARCH":
            m = re.match(r"\* SEARCH ?(.*)$", t)
            if m:
                nums = [int(x) for x in m.group(1).split()]
                return ["* SEARCH " + " ".join(self.uid(selected, n)
                                               for n in nums)]
        m = re.match(r"\* (\d+) FETCH \((.*)\)$", t, re.S)
        if m:
            body = m.group(2)
            body = re.sub(r"\bUID (\d+)",
                          lambda x: "UID " + self.uid(selected,
                                                      int(x.group(1))),
                          body)
            # A flag list is a set (RFC 9051 §2.3.2 gives no order;
            # Dovecot lists system flags in its own order): sorted,
            # spelling kept.
            body = re.sub(r"\bFLAGS \(([^)]*)\)", lambda x:
                          "FLAGS (" + " ".join(sorted(
                              strip_recent("(" + x.group(1) + ")")[1:-1]
                              .split(), key=str.lower)) + ")", body)
            # MODSEQ: CONDSTORE again (imapmerge never offers it); a FETCH
            # that carried nothing else is no FETCH at all.
            body = re.sub(r" ?\bMODSEQ \(\d+\)", "", body).strip()
            if not body:
                return None
            body = re.sub(r'INTERNALDATE "([^"]*)"', lambda x:
                          'INTERNALDATE "' + utc(x.group(1)) + '"', body)
            # The items of one FETCH response come in no set order (RFC
            # 9051 §7.5.2 names no order; Dovecot answers in its own
            # order, imapmerge view items first): sorted by name.
            items = fetch_items(body)
            if items is not None:
                body = " ".join(f"{k} {v}" for k, v in
                                sorted(items, key=lambda kv: kv[0].upper()))
            t = f"* {m.group(1)} FETCH ({body})"
        return render(t, r.lits)

    def code(self, code, verb, selected, target):
        word, _, args = code.partition(" ")
        w = word.upper()
        if w == "CAPABILITY":
            return "CAPABILITY (list)"
        if w == "UIDVALIDITY":
            folder = target or selected
            return f"UIDVALIDITY {self.validity(folder, int(args))}"
        if w == "UIDNEXT":
            return f"UIDNEXT {self.uidnext(target or selected, int(args))}"
        if w == "APPENDUID":
            uv, uids = args.split(None, 1)
            return ("APPENDUID " + self.validity(target, int(uv)) + " " +
                    " ".join(self.uid(target, n)
                             for n in self.uidset(target, uids)))
        if w == "COPYUID":
            uv, src, dst = args.split()
            pairs = zip(self.uidset(selected, src), self.uidset(target, dst))
            return ("COPYUID " + self.validity(target, int(uv)) + " " +
                    " ".join(f"{self.uid(selected, a)}->{self.uid(target, b)}"
                             for a, b in pairs))
        if w == "PERMANENTFLAGS":
            return "PERMANENTFLAGS " + strip_recent(args)
        return code


def sort_runs(lines, pattern):
    """LIST and LSUB answers come in no set order (RFC 9051 §6.3.9 and
    RFC 5258 name none; Dovecot answers in directory order): each run of
    such lines is sorted."""
    out, run = [], []
    for ln in lines + [None]:
        if ln is not None and re.match(pattern, ln):
            run.append(ln)
            continue
        out += sorted(run)
        run = []
        if ln is not None:
            out.append(ln)
    return out


def news_order(lines, count):
    """`* n EXISTS` and a `* m FETCH (FLAGS ...)` next to it tell of
    different things and may come in either order (RFC 9051 §7.4, §7.5:
    unilateral data); Dovecot tells flags first, imapmerge the new count
    first.  A FLAGS-only FETCH right after an EXISTS goes before it, but
    only for a message the client knew before that EXISTS (count: what
    the connection knew when the command began): one the EXISTS brought
    could not be told of first, so such an order stays as it came."""
    out = list(lines)
    changed = count is not None
    while changed:
        changed = False
        known = count
        for i in range(len(out) - 1):
            m = re.match(r"\* (\d+) (EXISTS|EXPUNGE)$", out[i])
            f = re.match(r"\* (\d+) FETCH \(FLAGS \([^)]*\)( UID \S+)?\)$",
                         out[i + 1])
            if m and m.group(2) == "EXISTS" and f and \
                    int(f.group(1)) <= known:
                out[i], out[i + 1] = out[i + 1], out[i]
                changed = True
                break
            if m:
                known = int(m.group(1)) if m.group(2) == "EXISTS" \
                    else known - 1
    return out


def fetch_items(s):
    """[(name, value)] of a FETCH response's items, or None when it does
    not parse (then it is compared as it came)."""
    items, i, n = [], 0, len(s)
    try:
        while i < n:
            while i < n and s[i] == " ":
                i += 1
            if i >= n:
                break
            j = i
            while j < n and s[j] not in " [":
                j += 1
            if j < n and s[j] == "[":
                j = s.index("]", j) + 1
                if j < n and s[j] == "<":
                    j = s.index(">", j) + 1
            name = s[i:j]
            if j >= n or s[j] != " ":
                return None
            i = j + 1
            j = skip_value(s, i)
            items.append((name, s[i:j]))
            i = j
    except (ValueError, IndexError):
        return None
    return items


def skip_value(s, i):
    """The end of the value that starts at s[i]."""
    if s[i] == '"':
        j = i + 1
        while s[j] != '"':
            j += 2 if s[j] == "\\" else 1
        return j + 1
    if s[i] == "{":
        j = s.index("\x00", i)
        return s.index("\x00", j + 1) + 1
    if s[i] == "(":
        depth, j = 0, i
        while True:
            c = s[j]
            if c == '"' or c == "{":
                j = skip_value(s, j)
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
    j = i
    while j < len(s) and s[j] not in " )":
        j += 1
    return j


def strip_recent(flags):
    return re.sub(r" ?\\Recent\b", "", flags, flags=re.I).replace("( ", "(")


def unquote(s):
    if s.startswith('"') and s.endswith('"'):
        return s[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return s


def utc(date):
    # INTERNALDATE: the same instant shown in another zone is the same
    # date (RFC 9051 §2.3.3); compare instants.
    m = re.match(r" ?(\d+)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)"
                 r"(\d\d)$", date)
    if not m:
        return date
    d = datetime.datetime(int(m.group(3)), MONTHS.index(m.group(2)) + 1,
                          int(m.group(1)), int(m.group(4)), int(m.group(5)),
                          int(m.group(6)))
    off = datetime.timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
    d = d - off if m.group(7) == "+" else d + off
    # A message APPENDed without a date gets the time of the APPEND, and
    # the two sides run one after the other: "now" is all there is to it.
    now = datetime.datetime.utcnow()
    if abs((d - now).total_seconds()) < 3600:
        return "(time of the APPEND)"
    return d.strftime("%d-%b-%Y %H:%M:%S UTC")


def render(text, lits):
    """A response as display lines: each literal's lines follow, indented
    with `| `, so that a difference inside a body shows as that line; then
    the rest of the response line."""
    pieces = re.split(r"\x00(\d+)\x00", text)
    out = [pieces[0]]
    for k in range(1, len(pieces), 2):
        body = lits[int(pieces[k])].decode("utf-8", "backslashreplace")
        body = body.replace("\x1b", "\\x1b")
        out += ["  | " + ln for ln in body.split("\r\n")]
        out.append("  " + pieces[k + 1])
    return out


# ---------------------------------------------------------------- comparing

class Entry:
    """A row of docs/conformance.md's table of known differences."""

    def __init__(self, ident, kind, script, place, command, lines, reason):
        self.id = ident
        self.kind = kind
        self.script = script
        self.place = place
        self.command = re.compile(command)
        # "~ REGEX": what REGEX matches is struck out of both sides' lines
        # (an attribute one side adds, say); else each differing line
        # must match REGEX.
        self.strip = re.compile(lines[2:]) if lines.startswith("~ ") \
            else None
        self.lines = None if self.strip else re.compile(lines)
        self.reason = reason
        self.used = 0

    def applies(self, script, place, command):
        return ((self.script == "*" or script in
                 [x.strip() for x in self.script.split(",")]) and
                (self.place == "*" or self.place == place) and
                self.command.search(command) is not None)

    def covers(self, script, place, command, line):
        return (self.lines is not None and
                self.applies(script, place, command) and
                self.lines.search(line) is not None)

    def struck(self, lines):
        out = []
        for ln in lines:
            ln = self.strip.sub("", ln)
            ln = re.sub(r"\( +", "(", re.sub(r" +\)", ")", ln))
            out.append(re.sub(r"(?<=\S)  +", " ", ln))
        return sort_runs(out, r"\* (LIST|LSUB) ")


def load_entries(path=DOC):
    """The table: every row whose first cell is an id like C12."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not re.match(r"\|\s*[A-Z]\d+\s*\|", line):
                continue
            cells = [c.strip().replace("\\|", "|")
                     for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if len(cells) < 7:
                raise ValueError(f"conformance.md: short row: {line}")
            ident, kind, script, place, command, lines, reason = cells[:7]
            kind = kind.strip("*")
            if kind not in ("by design", "to fix"):
                raise ValueError(f"conformance.md: {ident}: kind {kind}")
            entries.append(Entry(ident, kind, script.strip("`"),
                                 place.strip("`"), command.strip("`"),
                                 lines.strip("`"), reason))
    return entries


class Difference:
    def __init__(self, script, place, rec_d, rec_m, direct, merged, unlisted,
                 ids):
        self.script = script
        self.place = place
        self.command = rec_d.step.label()
        self.where = f"{script}.txt:{rec_d.step.lineno}"
        self.direct = direct
        self.merged = merged
        self.unlisted = unlisted      # the diff lines no entry covers
        self.ids = ids                # the entries that covered the others

    def show(self):
        out = [f"== {self.where} (place {self.place}): {self.command}"]
        if self.unlisted:
            out.append("   not listed in docs/conformance.md:")
            out += ["     " + ln for ln in self.unlisted]
        out.append("   direct Dovecot:")
        out += ["     " + ln for ln in self.direct] or ["     (nothing)"]
        out.append("   imapmerge:")
        out += ["     " + ln for ln in self.merged] or ["     (nothing)"]
        return "\n".join(out)


def transcript(recs_d, recs_m, norm_d, norm_m):
    """Both normalised transcripts, command by command, as text (for
    CONFORMANCE_DUMP and for reading what the servers said)."""
    out = []
    for rec_d, rec_m in zip(recs_d, recs_m):
        a = norm_d.lines(rec_d, rec_d.tag or "-")
        b = norm_m.lines(rec_m, rec_m.tag or "-")
        out.append(f"### {rec_d.step.lineno}: {rec_d.step.label()}")
        if a == b:
            out += ["    " + ln for ln in a]
        else:
            out.append("  direct:")
            out += ["    " + ln for ln in a]
            out.append("  imapmerge:")
            out += ["    " + ln for ln in b]
    return "\n".join(out) + "\n"


def changed_lines(a, b):
    """The lines only one side has: "- " direct, "+ " imapmerge."""
    out = []
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op != "equal":
            out += ["- " + ln for ln in a[i1:i2]]
            out += ["+ " + ln for ln in b[j1:j2]]
    return out


def compare(script, place, recs_d, recs_m, norm_d, norm_m, entries):
    """Every difference between the two transcripts; each says which of
    its lines no entry covers."""
    diffs = []
    for rec_d, rec_m in zip(recs_d, recs_m):
        a = norm_d.lines(rec_d, rec_d.tag or "-")
        b = norm_m.lines(rec_m, rec_m.tag or "-")
        if a == b:
            continue
        label = rec_d.step.label()
        ids = set()
        sa, sb = a, b
        for e in entries:
            if e.strip is None or not e.applies(script, place, label):
                continue
            ta, tb = e.struck(sa), e.struck(sb)
            if len(changed_lines(ta, tb)) < len(changed_lines(sa, sb)):
                e.used += 1
                ids.add(e.id)
            sa, sb = ta, tb
        changed = changed_lines(sa, sb)
        unlisted = []
        for ln in changed:
            hit = [e for e in entries if e.covers(script, place, label, ln)]
            for e in hit:
                e.used += 1
                ids.add(e.id)
            if not hit:
                unlisted.append(ln)
        diffs.append(Difference(script, place, rec_d, rec_m, a, b, unlisted,
                                ids))
    return diffs
