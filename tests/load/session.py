"""One checking session: random IMAP work on one account, and a model of
what that work must leave behind.

A session touches only its own messages (the ones it appended, found by the
tag in their Message-ID and Subject) when it stores flags, fetches bodies
without PEEK, copies, moves or expunges; it reads everybody's messages only
with PEEK.  So whatever its own messages look like is decided by it alone,
and the model says exactly what the server must show:

- each own message's folder, UID (while UIDVALIDITY stays), flags and
  keywords, header and body bytes;
- which own messages it expunged or moved away (they must stay gone);
- an own message it marked \\Deleted may vanish at any time (another
  session's EXPUNGE removes it), and nothing else of its own may.

On top of the model, every response is checked as it arrives: the grammar
(wire.py), the tagged status (OK, or NO [EXPUNGEISSUED] where the command
also read other sessions' messages), the sequence numbers (EXISTS never goes
down, EXPUNGE and FETCH never past the count, no EXPUNGE during FETCH, STORE
or SEARCH, a sequence number keeps its UID and UIDs rise with sequence
numbers) and that FETCH FLAGS never shows a keyword that FLAGS or
PERMANENTFLAGS did not announce first.

When a command fails, the messages it touched become uncertain; the next
checkpoint in their folder adopts what the server shows, without counting
it again.
"""

import asyncio
import collections
import random
import ssl
import time

from .mail import make_mail
from .wire import Malformed, parse_response, parse_seqset, read_response

FOLDERS = ("INBOX", "Archive")
KEYWORDS = ["$Junk", "$NotJunk", "$Forwarded", "$MDNSent", "$label1"]
STORE_FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"] + KEYWORDS
PEEK_ITEMS = ["FLAGS", "UID", "ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[HEADER]",
              "RFC822.SIZE", "INTERNALDATE",
              "BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)]",
              "BODY.PEEK[TEXT]<0.100>", "BODY"]
OWN_ITEMS = [["BODY[TEXT]"], ["BODY[]"], ["BODY[HEADER]"], ["BODY[1]"],
             ["BODY.PEEK[1]"], ["BODY.PEEK[TEXT]"], ["BODY.PEEK[2]"],
             ["BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)]"],
             ["BODY.PEEK[TEXT]<0.100>"],
             ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE"]]
TIMEOUT = 60            # seconds for any one command (or pipelined pair)
MAX_OWN = 6             # own live messages per folder before removing some
PARTIAL = 100           # length of <0.N> partial fetches


class Broken(Exception):
    """The connection is unusable: the session logs in again."""


def norm(flags):
    return {f.lower() for f in flags if f.lower() != "\\recent"}


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def response_key(item):
    """The FETCH item a request item is answered with."""
    item = item.upper().replace(".PEEK", "")
    if item.endswith(">") and "<" in item:
        item = item[:item.rindex("<")] + "<" + \
            item[item.rindex("<") + 1:].split(".")[0].rstrip(">") + ">"
    return item


class Msg:
    """The model of one own message in one folder."""

    def __init__(self, mail, folder, flags):
        self.mail = mail
        self.folder = folder
        self.flags = set(flags)         # lower case, no \recent
        self.uid = None
        self.state = "live"             # live, doomed (\Deleted), gone
        self.uncertain = False
        self.reported = None            # wrong flags already reported
        self.history = []               # commands that acted on it

    def __repr__(self):
        return (f"{self.mail.mid} in {self.folder} UID {self.uid} "
                f"{self.state}{' uncertain' if self.uncertain else ''} "
                f"flags {sorted(self.flags)}")

    def story(self):
        return "; its commands: " + " | ".join(self.history[-8:])


class Cmd:
    def __init__(self, tag, name, wire, after_plus=None, idle=None,
                 targets=(), removes=(), read_others=False):
        self.tag = tag
        self.name = name                # FETCH, UID STORE, ...
        self.wire = wire
        self.after_plus = after_plus    # a synchronising literal's bytes
        self.idle = idle                # seconds in IDLE before DONE
        self.await_plus = after_plus is not None or idle is not None
        self.targets = list(targets)    # own messages it acts on
        self.removes = list(removes)    # own messages it may expunge
        self.read_others = read_others  # NO [EXPUNGEISSUED] is fine
        self.sets_seen = None           # own message a body FETCH marks
        self.checkpoint = False
        self.own_flags = {}             # id(Msg) -> (Msg, FLAGS, seq): last
        self.status = self.code = self.text = self.tagged = None
        self.codes = []
        self.untagged = []
        self.fetch = {}                 # seq -> items, merged
        self.search = None
        self.search_exists = None
        self.statuses = []
        self.lists = []
        self.expunged = []              # UIDs (or None) expunged meanwhile
        self.changed = False            # an EXISTS or EXPUNGE meanwhile
        self.done = False

    def show(self, limit=200):
        line = self.wire.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        return line if len(line) <= limit else line[:limit] + "..."

    def answer(self, limit=6):
        lines = [r.short(240) for r in self.untagged[:limit]]
        if len(self.untagged) > limit:
            lines.append(f"... {len(self.untagged) - limit} more untagged")
        if self.tagged is not None:
            lines.append(self.tagged.decode("utf-8", "replace").rstrip()[:240])
        return lines

    def code_of(self, name):
        return next((v for n, v in self.codes if n == name), None)


class Session:
    def __init__(self, run, n):
        self.run = run                  # Run: where, who, report, deadline
        self.n = n
        self.rng = random.Random(f"{run.seed}-{n}")
        self.tag = f"{run.tag}-s{n}"
        self.prefix = self.tag + "-"    # in every own Message-ID and Subject
        self.models = {f: {} for f in FOLDERS}   # folder -> mid -> Msg
        self.uidvalidity = {}
        self.k = 0
        self.step = 0
        self.tagn = 0
        self.trace = collections.deque(maxlen=8)
        self.reader = self.writer = None
        self.reset_selection()

    # --------------------------------------------------------- reporting

    def bad(self, kind, cmd, detail="", cls="inconsistency"):
        self.run.report.add(cls, kind, self, cmd, detail)

    def error(self, kind, cmd, detail=""):
        self.bad(kind, cmd, detail, cls="error")

    # ------------------------------------------------------------- state

    def reset_selection(self):
        self.selected = None
        self.readonly = False
        self.exists = 0
        self.uids = []                  # sequence number - 1 -> UID or None
        self.announced = set()          # FLAGS, lower case
        self.perm = set()               # PERMANENTFLAGS, lower case

    def own(self, uid, folder=None):
        if uid is None:
            return None
        for m in self.models[folder or self.selected].values():
            if m.uid == uid and m.state != "gone":
                return m
        return None

    def live(self, folder=None):
        return [m for m in self.models[folder or self.selected].values()
                if m.state == "live" and not m.uncertain and m.uid]

    def doomed(self, folder=None):
        return [m for m in self.models[folder or self.selected].values()
                if m.state == "doomed" and not m.uncertain and m.uid]

    def seq_of(self, msg):
        try:
            return self.uids.index(msg.uid) + 1
        except ValueError:
            return None

    def uncertain(self, msgs):
        for m in msgs:
            m.uncertain = True

    # ---------------------------------------------------------- the wire

    def cmd(self, name, args="", **kw):
        self.tagn += 1
        tag = f"s{self.n}t{self.tagn}"
        text = f"{tag} {name}" + (f" {args}" if args else "")
        wire = kw.pop("wire", None)
        return Cmd(tag, name, wire if wire is not None
                   else (text + "\r\n").encode(), **kw)

    async def connect(self):
        host, port = self.run.host, self.run.port
        async with self.run.login_gate:
            try:
                self.reader, self.writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, ssl=self.run.ctx,
                                            server_hostname=host,
                                            limit=1 << 22), TIMEOUT)
                raw = await asyncio.wait_for(read_response(self.reader),
                                             TIMEOUT)
                r = parse_response(raw)
                greeting = r.kind == "untagged" and r.status == "OK"
            except (OSError, ssl.SSLError, ConnectionError, Malformed,
                    asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                self.error("connect", None, f"{type(e).__name__}: {e}")
                greeting = None
            if not greeting:
                if greeting is not None:
                    self.error("greeting", None, r.short())
                self.drop()
                await asyncio.sleep(1)
                raise Broken("connect")
            c = self.cmd("LOGIN", f"{quote(self.run.user)} "
                         f"{quote(self.run.password)}")
            await self.execute(c)
            if c.status != "OK":
                self.drop()
                await asyncio.sleep(1)
                raise Broken("login")
        self.reset_selection()

    def drop(self):
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:           # noqa: BLE001 - already gone
                pass
        self.reader = self.writer = None
        self.reset_selection()

    async def execute(self, *cmds):
        self.writer.write(b"".join(c.wire for c in cmds))
        try:
            await asyncio.wait_for(self._collect(list(cmds)), TIMEOUT)
        except asyncio.TimeoutError:
            for c in cmds:
                if not c.done:
                    self.error(f"timeout {c.name}", c,
                               f"no tagged answer in {TIMEOUT} s")
            self._broken(cmds)
        except (ConnectionError, OSError, ssl.SSLError,
                asyncio.IncompleteReadError) as e:
            c = next((c for c in cmds if not c.done), cmds[0])
            if c.name != "LOGOUT":
                self.error("connection lost", c, f"{type(e).__name__}: {e}")
            self._broken(cmds)
        for c in cmds:
            tagged = (c.tagged or b"").decode("utf-8", "replace").strip()
            for m in c.targets:
                m.history.append(f"{c.show(100)} -> {tagged[:80]}")
            self.run.report.commands += 1
            self.trace.append(f"{c.show(120)} -> {tagged[:100]}")
            if c.status == "NO" and c.read_others and \
                    c.code and c.code[0] == "EXPUNGEISSUED":
                self.run.report.expungeissued += 1
            elif c.status == "NO" and c.read_others and \
                    self.run.unavailable_ok and c.code and \
                    c.code[0] == "UNAVAILABLE":
                # A server down on purpose: others' messages that only it
                # holds cannot be read meanwhile.
                self.run.report.unavailable += 1
            elif c.status != "OK":
                self.error(f"{c.status} {c.name}", c, c.text or "")
                self.uncertain(c.targets)
            self.check_flags(c)

    def _broken(self, cmds):
        for c in cmds:
            self.uncertain(c.targets)
        self.drop()
        raise Broken("connection")

    async def _collect(self, cmds):
        waiting = {c.tag: c for c in cmds}
        loop = asyncio.get_running_loop()
        while waiting:
            raw = await read_response(self.reader)
            active = [c for c in cmds if not c.done] or cmds
            try:
                r = parse_response(raw)
            except Malformed as e:
                self.error("malformed response", active[0],
                           f"{e}; response: {raw[:400]!r}")
                tag = raw.split(b" ", 1)[0].decode("ascii", "replace")
                if tag in waiting:
                    c = waiting.pop(tag)
                    c.status, c.tagged, c.done = "MALFORMED", raw, True
                continue
            if r.kind == "continuation":
                c = next((c for c in active if c.await_plus), None)
                if c is None:
                    self.error("unexpected continuation", active[0],
                               r.short())
                    continue
                c.await_plus = False
                if c.idle is not None:
                    loop.call_later(c.idle, self._done_idle, self.writer)
                else:
                    self.writer.write(c.after_plus)
                continue
            if r.kind == "tagged":
                c = waiting.pop(r.tag, None)
                if c is None:
                    self.error("unknown tag", active[0], r.short())
                    continue
                c.status, c.code, c.text = r.status, r.code, r.text
                c.tagged, c.done = raw, True
                if r.code:
                    c.codes.append(r.code)
                continue
            self.on_untagged(r, active)

    @staticmethod
    def _done_idle(writer):
        if not writer.is_closing():
            writer.write(b"DONE\r\n")

    # --------------------------------------------------- untagged data

    def on_untagged(self, r, active):
        c0 = active[0]
        for c in active:
            if len(c.untagged) < 200:
                c.untagged.append(r)
        selecting = any(c.name in ("SELECT", "EXAMINE") for c in active)
        if r.status:
            if r.status == "OK":
                if r.code:
                    for c in active:
                        c.codes.append(r.code)
                    if r.code[0] == "PERMANENTFLAGS":
                        self.perm |= norm(r.code[1])
                return
            if r.status == "BYE" and any(c.name == "LOGOUT" for c in active):
                return
            if r.status == "NO" and self.run.unavailable_ok and r.code and \
                    r.code[0] == "UNAVAILABLE" and \
                    any("SEARCH" in c.name for c in active):
                # What a stopped server alone holds was not searched;
                # own messages are on the other one.
                self.run.report.unavailable += 1
                return
            self.error(f"untagged {r.status}", c0, r.short())
            return
        name = r.name
        if name == "EXISTS":
            for c in active:
                c.changed = True
            if selecting:
                self.exists = r.number
                self.uids = [None] * r.number
                return
            if r.number < self.exists:
                self.bad("EXISTS went down", c0,
                         f"* {r.number} EXISTS after {self.exists} "
                         f"with no EXPUNGE between")
                self.uids = [None] * r.number
            else:
                self.uids.extend([None] * (r.number - self.exists))
            self.exists = r.number
        elif name == "EXPUNGE":
            if selecting:
                return
            for c in active:
                c.changed = True
            if all(c.name in ("FETCH", "STORE", "SEARCH") for c in active):
                self.bad(f"EXPUNGE during {c0.name}", c0,
                         f"{r.short()} (RFC 3501 7.4.1 forbids it)")
            if r.number > self.exists:
                self.bad("EXPUNGE past EXISTS", c0,
                         f"* {r.number} EXPUNGE with {self.exists} messages")
                return
            uid = self.uids.pop(r.number - 1)
            self.exists -= 1
            for c in active:
                c.expunged.append(uid)
                # What this command fetched is renumbered with the rest:
                # a later FETCH of message n is the one after the gone one.
                c.fetch = {(s - 1 if s > r.number else s): d
                           for s, d in c.fetch.items() if s != r.number}
            m = self.own(uid)
            if m is not None and not m.uncertain and m.state == "live" and \
                    not any(m in c.removes for c in active):
                self.bad("own message expunged", c0,
                         f"* {r.number} EXPUNGE was {m!r}, which this session "
                         f"neither deleted nor moved")
                m.uncertain = True
        elif name == "FETCH":
            if not selecting:
                self.on_fetch(r, active)
        elif name == "FLAGS":
            self.announced = norm(r.data)
        elif name == "SEARCH":
            c = next((c for c in active if c.name.endswith("SEARCH")), c0)
            c.search = r.data
            c.search_exists = self.exists
        elif name == "STATUS":
            c0.statuses.append(r.data)
        elif name in ("LIST", "LSUB"):
            c0.lists.append(r.data)

    def on_fetch(self, r, active):
        c0 = active[0]
        n, d = r.number, r.data
        if self.selected is None:
            self.bad("FETCH with no folder selected", c0, r.short())
            return
        if n > self.exists:
            self.bad("FETCH past EXISTS", c0,
                     f"{r.short()} with {self.exists} messages")
            return
        uid = d.get("UID")
        known = self.uids[n - 1]
        if uid is not None:
            if known is not None and known != uid:
                self.bad("sequence number changed UID", c0,
                         f"message {n} was UID {known}, now {r.short()}")
                self.uids = [None] * self.exists
            else:
                self.check_order(n - 1, uid, c0, r)
            self.uids[n - 1] = uid
        else:
            uid = known
        for c in active:
            c.fetch.setdefault(n, {}).update(d)
        if "FLAGS" in d:
            kws = {f.lower() for f in d["FLAGS"] if not f.startswith("\\")}
            missing = kws - self.announced - self.perm
            if missing:
                self.bad("keyword not announced", c0,
                         f"{sorted(missing)} in {r.short()}; FLAGS said "
                         f"{sorted(self.announced)}, PERMANENTFLAGS "
                         f"{sorted(self.perm)}")
                self.announced |= missing
        m = self.own(uid)
        if m is None:
            env = d.get("ENVELOPE")
            mid = env[9].decode("utf-8", "replace") if env and env[9] else ""
            if self.prefix not in mid:
                return
            m = self.models[self.selected].get(mid)
            if m is None or m.uncertain or m.state == "gone" or m.uid is None:
                return
            if uid is not None:
                self.bad("own message at wrong place", c0,
                         f"message {n} (UID {uid}) has the envelope of "
                         f"{m!r}: {r.short()}")
                return
        if m.uncertain:
            return
        self.check_own(m, n, d, c0, r)

    def check_order(self, i, uid, c, r):
        j = i - 1
        while j >= 0 and self.uids[j] is None:
            j -= 1
        k = i + 1
        while k < len(self.uids) and self.uids[k] is None:
            k += 1
        if (j >= 0 and self.uids[j] >= uid) or \
                (k < len(self.uids) and self.uids[k] <= uid):
            self.bad("UIDs not ascending", c,
                     f"{r.short()}: message {j + 1} is UID "
                     f"{self.uids[j] if j >= 0 else '-'}, message {k + 1} is "
                     f"UID {self.uids[k] if k < len(self.uids) else '-'}")
            self.uids = [None] * self.exists

    def check_flags(self, c):
        """Own messages' flags as the command's answer left them."""
        for m, got, n in c.own_flags.values():
            if m.uncertain or got == m.flags or got == m.reported:
                continue
            m.reported = got
            if c.sets_seen is m and m.flags - got == {"\\seen"} \
                    and got <= m.flags:
                kind = "body FETCH answers FLAGS without its \\Seen"
            else:
                kind = "FETCH FLAGS wrong for own message"
            self.bad(kind, c, f"message {n} {m.mail.mid} UID {m.uid}: "
                     f"server says {sorted(got)}, model {sorted(m.flags)}"
                     + m.story())

    def check_own(self, m, n, d, c, r):
        mail = m.mail
        if "FLAGS" in d and not c.checkpoint:
            # The last FLAGS of the command's answer counts: a server may
            # send a message's flags again when the command changed them.
            c.own_flags[id(m)] = (m, norm(d["FLAGS"]), n)
        if m.state == "doomed":
            return      # may be expunged meanwhile: NIL data (RFC 2180 4.1.3)
        env = d.get("ENVELOPE")
        if env is not None and (env[9] != mail.mid.encode() or
                                env[1] != mail.subject.encode()):
            self.bad("own content wrong", c,
                     f"message {n} UID {m.uid} should be {mail.mid}: "
                     f"{r.short()}")
        if "RFC822.SIZE" in d and d["RFC822.SIZE"] != len(mail.raw):
            self.bad("own content wrong", c,
                     f"message {n} {mail.mid} RFC822.SIZE {d['RFC822.SIZE']}"
                     f", appended {len(mail.raw)}")
        bs = d.get("BODYSTRUCTURE")
        if bs is not None:
            parts = len(bs.get("parts", [None]))
            if parts != len(mail.parts):
                self.bad("own content wrong", c,
                         f"message {n} {mail.mid} BODYSTRUCTURE has {parts} "
                         f"parts, appended {len(mail.parts)}")
        for key, val in d.items():
            if not key.startswith("BODY["):
                continue
            spec, partial = key[5:].split("]", 1)
            want = mail.section(spec)
            if want is None:
                continue
            if partial:
                origin = int(partial[1:-1])
                want = want[origin:origin + PARTIAL]
            if val != want:
                got = val or b""
                diff = next((i for i in range(min(len(got), len(want)))
                             if got[i] != want[i]), min(len(got), len(want)))
                self.bad("own content wrong", c,
                         f"message {n} {mail.mid} {key}: {len(got)} bytes, "
                         f"appended {len(want)}; first difference at byte "
                         f"{diff}: {got[diff:diff + 40]!r} vs "
                         f"{want[diff:diff + 40]!r}")

    # ----------------------------------------------------- the actions

    async def select(self, folder, examine=False):
        self.reset_selection()
        c = self.cmd("EXAMINE" if examine else "SELECT", quote(folder))
        await self.execute(c)
        if c.status != "OK":
            self.reset_selection()
            return False
        self.selected = folder
        self.readonly = examine or any(n == "READ-ONLY" for n, _ in c.codes)
        uv = c.code_of("UIDVALIDITY")
        if uv is None:
            self.bad("SELECT without UIDVALIDITY", c)
        elif folder in self.uidvalidity and self.uidvalidity[folder] != uv:
            self.bad("UIDVALIDITY changed", c,
                     f"{folder}: {self.uidvalidity[folder]} -> {uv}")
            for m in self.models[folder].values():
                m.uid = None
                m.uncertain = True
        if uv is not None:
            self.uidvalidity[folder] = uv
        live = self.live(folder)
        if self.exists < len(live):
            self.bad("EXISTS below own messages", c,
                     f"{folder}: EXISTS {self.exists}, but {len(live)} own "
                     f"messages are there: {live[:3]}")
        uidnext = c.code_of("UIDNEXT")
        if uidnext is not None and live and \
                max(m.uid for m in live) >= uidnext:
            self.bad("UIDNEXT not above own UIDs", c,
                     f"{folder}: UIDNEXT {uidnext}, own UIDs "
                     f"{sorted(m.uid for m in live)}")
        if self.rng.random() < 0.5:
            await self.fetch_all("UID FETCH", "1:*", "(FLAGS)")
        return True

    async def fetch_all(self, name, seqs, items):
        """FETCH 1:* or UID FETCH 1:*: every message answers."""
        c = self.cmd(name, f"{seqs} {items}", read_others=True)
        await self.execute(c)
        if c.status == "OK" and not c.changed and \
                len(c.fetch) != self.exists:
            self.bad(f"{name} 1:* incomplete", c,
                     f"{len(c.fetch)} messages answered, EXISTS "
                     f"{self.exists}")

    async def act_switch(self):
        folder = self.rng.choice(FOLDERS)
        await self.select(folder, examine=self.rng.random() < 0.25)

    async def act_fetch_range(self):
        if self.exists == 0:
            return await self.act_noop()
        rng = self.rng
        items = rng.sample(PEEK_ITEMS, rng.randint(1, 3))
        v = rng.random()
        if v < 0.15:
            if rng.random() < 0.5:
                return await self.fetch_all("UID FETCH", "1:*", "(FLAGS)")
            return await self.fetch_all("FETCH", "1:*", "(UID FLAGS)")
        if v < 0.6:
            a = rng.randint(1, self.exists)
            b = min(self.exists, a + rng.randint(0, 9))
            seqs = str(a) if a == b else f"{a}:{b}"
            c = self.cmd("FETCH", f"{seqs} ({' '.join(items)})",
                         read_others=True)
            await self.execute(c)
            if c.status == "OK":
                want = {response_key(i) for i in items}
                for s in range(a, b + 1):
                    got = set(c.fetch.get(s, {}))
                    if not want <= got:
                        uid = self.uids[s - 1] if s <= len(self.uids) \
                            else None
                        m = self.own(uid)
                        self.bad("FETCH incomplete", c,
                                 f"message {s} (UID {uid}"
                                 f"{', own: ' + repr(m) if m else ''}): "
                                 f"asked {sorted(want)}, got {sorted(got)}")
                        break
            return
        known = [u for u in self.uids if u is not None]
        lo = rng.choice(known) if known and rng.random() < 0.7 else \
            rng.randint(1, 50)
        hi = lo + rng.randint(0, 20)
        c = self.cmd("UID FETCH", f"{lo}:{hi} ({' '.join(items)})",
                     read_others=True)
        await self.execute(c)
        if c.status == "OK":
            asked = {response_key(i) for i in items} - {"UID", "FLAGS"}
            for s, d in c.fetch.items():
                if not asked & set(d):
                    continue            # news of flags, not the answer
                if d.get("UID") is None:
                    self.bad("UID FETCH without UID", c, f"message {s}: {d}")
                    break
                if not lo <= d["UID"] <= hi:
                    self.bad("UID FETCH outside the range", c,
                             f"{lo}:{hi} answered UID {d['UID']}")
                    break

    async def act_fetch_own(self):
        live = self.live()
        if not live:
            return await self.act_append()
        rng = self.rng
        m = rng.choice(live)
        items = rng.choice(OWN_ITEMS) + \
            rng.sample(["FLAGS", "UID"], rng.randint(0, 2))
        peek = all(".PEEK" in i or not i.startswith("BODY[")
                   for i in items)
        seq = self.seq_of(m) if rng.random() < 0.5 else None
        if not peek and not self.readonly:
            m.flags.add("\\seen")
        if seq is not None:
            c = self.cmd("FETCH", f"{seq} ({' '.join(items)})", targets=[m])
        else:
            c = self.cmd("UID FETCH", f"{m.uid} ({' '.join(items)})",
                         targets=[m])
        if not peek and not self.readonly:
            c.sets_seen = m
        await self.execute(c)
        if c.status == "OK" and not m.uncertain:
            got = [d for s, d in c.fetch.items()
                   if d.get("UID") == m.uid or
                   (s <= len(self.uids) and self.uids[s - 1] == m.uid)]
            want = {response_key(i) for i in items}
            if not got or not want <= set(got[0]):
                self.bad("FETCH incomplete", c,
                         f"{m!r}: asked {sorted(want)}, got "
                         f"{sorted(set(got[0])) if got else 'nothing'}")

    async def act_store(self, delete=False):
        live = self.live()
        if not live:
            return await self.act_append()
        rng = self.rng
        targets = rng.sample(live, min(len(live), rng.randint(1, 2 if delete
                                                               else 3)))
        seqs = [self.seq_of(m) for m in targets]
        use_seq = rng.random() < 0.4 and None not in seqs
        silent = rng.random() < 0.4
        if delete:
            op, flags = "+FLAGS", ["\\Deleted"]
        else:
            op = rng.choice(["+FLAGS", "-FLAGS", "FLAGS"])
            flags = rng.sample(STORE_FLAGS, rng.randint(0 if op == "FLAGS"
                                                        else 1, 3))
        low = norm(flags)
        before = {id(m): set(m.flags) for m in targets}
        for m in targets:
            if op == "+FLAGS":
                m.flags |= low
            elif op == "-FLAGS":
                m.flags -= low
            else:
                m.flags = set(low)
            if delete:
                m.state = "doomed"
        spec = f"{op}{'.SILENT' if silent else ''} ({' '.join(flags)})"
        if use_seq:
            c = self.cmd("STORE", f"{','.join(map(str, seqs))} {spec}",
                         targets=targets)
        else:
            c = self.cmd("UID STORE",
                         f"{','.join(str(m.uid) for m in targets)} {spec}",
                         targets=targets)
        await self.execute(c)
        if c.status == "OK" and not silent:
            answered = {d.get("UID", self.uids[s - 1] if s <= len(self.uids)
                              else None)
                        for s, d in c.fetch.items() if "FLAGS" in d}
            for m in targets:
                # Another session's EXPUNGE may take a message as soon as
                # this STORE marked it \Deleted: then EXPUNGE, not FETCH.
                # A STORE by number may not tell that EXPUNGE: then the
                # FETCH may be missing too (RFC 2180 §4.2.1), and the
                # EXPUNGE comes with a later command.
                gone = m.uid in c.expunged or (
                    m.state == "doomed" and (None in c.expunged or
                                             c.name == "STORE"))
                if m.uid not in answered and not m.uncertain and not gone \
                        and m.flags != before[id(m)]:
                    self.bad("STORE without FETCH", c,
                             f"{m!r} (flags were {sorted(before[id(m)])}) "
                             f"got no untagged FETCH FLAGS")

    async def act_delete(self):
        await self.act_store(delete=True)

    async def act_expunge(self):
        doomed = self.doomed()
        if not doomed:
            return await self.act_delete()
        before = {m.uid for m in doomed if m.uid in self.uids}
        if self.rng.random() < 0.7:
            c = self.cmd("UID EXPUNGE", ",".join(str(m.uid) for m in doomed),
                         targets=doomed, removes=doomed)
        else:
            c = self.cmd("EXPUNGE", targets=doomed, removes=doomed)
        await self.execute(c)
        if c.status != "OK":
            return
        for m in doomed:
            if m.uncertain:
                continue
            m.state = "gone"
            if m.uid in before and m.uid in self.uids:
                self.bad("EXPUNGE not announced", c,
                         f"{m!r} is still message {self.seq_of(m)} after "
                         f"{c.name} OK")

    async def act_copy(self, move=False):
        if move and self.readonly:
            move = False
        target = next(f for f in FOLDERS if f != self.selected)
        have = self.models[target]
        sources = [m for m in self.live() if m.mail.mid not in have or
                   (have[m.mail.mid].state == "gone" and
                    not have[m.mail.mid].uncertain)]
        if not sources:
            return await self.act_append()
        rng = self.rng
        sources = rng.sample(sources, min(len(sources), rng.randint(1, 2)))
        seqs = [self.seq_of(m) for m in sources]
        before = {m.uid for m in sources if m.uid in self.uids}
        copies = [Msg(m.mail, target, m.flags) for m in sources]
        for m, src in zip(copies, sources):
            m.history = [f"(copy of UID {src.uid} in {src.folder})"]
            m.uncertain = True           # until COPYUID says where
            have[m.mail.mid] = m
        name = ("UID " if rng.random() < 0.6 or None in seqs else "") + \
            ("MOVE" if move else "COPY")
        if name.startswith("UID"):
            sset = ",".join(str(m.uid) for m in sources)
        else:
            sset = ",".join(map(str, seqs))
        c = self.cmd(name, f"{sset} {quote(target)}", targets=sources,
                     removes=sources if move else ())
        await self.execute(c)
        if c.status != "OK":
            return
        cu = c.code_of("COPYUID")
        if cu is None:
            self.bad("COPYUID missing", c, f"{name} answered without COPYUID")
        else:
            validity, src, dst = cu
            if self.uidvalidity.get(target, validity) != validity:
                self.bad("COPYUID of another UIDVALIDITY", c,
                         f"{target} has {self.uidvalidity[target]}, COPYUID "
                         f"says {validity}")
            pairs = dict(zip(parse_seqset(src), parse_seqset(dst)))
            for m, cp in zip(sources, copies):
                if m.uid in pairs:
                    cp.uid = pairs[m.uid]
                    cp.uncertain = False
                else:
                    self.bad("COPYUID incomplete", c,
                             f"no UID for {m!r} in COPYUID {src} {dst}")
        if move:
            for m in sources:
                if m.uncertain:
                    continue
                m.state = "gone"
                if m.uid in before and m.uid in self.uids:
                    self.bad("MOVE without EXPUNGE", c,
                             f"{m!r} is still message {self.seq_of(m)} after "
                             f"MOVE OK")

    async def act_move(self):
        await self.act_copy(move=True)

    def new_mail(self, folder):
        self.k += 1
        big = self.rng.random() < 0.04
        mail = make_mail(self.rng, self.tag, f"{self.step}x{self.k}",
                         self.run.user, big=big)
        flags = self.rng.sample(STORE_FLAGS, self.rng.randint(0, 2))
        m = Msg(mail, folder, norm(flags))
        m.uncertain = True               # until APPENDUID
        self.models[folder][mail.mid] = m
        self.run.report.appended += 1
        return m, flags

    def append_cmd(self, m, flags, plus):
        when = ""
        if self.rng.random() < 0.3:
            when = ' "14-Nov-2023 22:13:20 +0000"'
        raw = m.mail.raw
        lit = f"{{{len(raw)}{'+' if plus else ''}}}"
        self.tagn += 1
        tag = f"s{self.n}t{self.tagn}"
        head = (f"{tag} APPEND {quote(m.folder)} ({' '.join(flags)})"
                f"{when} {lit}\r\n").encode()
        if plus:
            return Cmd(tag, "APPEND", head + raw + b"\r\n", targets=[m])
        return Cmd(tag, "APPEND", head, after_plus=raw + b"\r\n",
                   targets=[m])

    def appended(self, c, m):
        if c.status != "OK":
            return
        au = c.code_of("APPENDUID")
        if au is None:
            self.bad("APPENDUID missing", c)
            return
        validity, uids = au
        if self.uidvalidity.get(m.folder, validity) != validity:
            self.bad("APPENDUID of another UIDVALIDITY", c,
                     f"{m.folder} has {self.uidvalidity[m.folder]}, "
                     f"APPENDUID says {validity}")
            return
        m.uid = parse_seqset(uids)[0]
        m.uncertain = False

    def append_folder(self):
        folders = [f for f in FOLDERS
                   if len([m for m in self.models[f].values()
                           if m.state != "gone"]) < MAX_OWN]
        return self.rng.choice(folders) if folders else None

    async def act_append(self):
        folder = self.append_folder()
        if folder is None:
            if not self.readonly and self.doomed():
                return await self.act_expunge()
            if not self.readonly and self.live():
                return await self.act_delete()
            return await self.act_switch()
        m, flags = self.new_mail(folder)
        c = self.append_cmd(m, flags, plus=self.rng.random() < 0.6)
        await self.execute(c)
        self.appended(c, m)

    async def act_append_two(self):
        """Two APPENDs with LITERAL+ in one write."""
        f1, f2 = self.append_folder(), self.append_folder()
        if f1 is None or f2 is None:
            return await self.act_append()
        m1, fl1 = self.new_mail(f1)
        m2, fl2 = self.new_mail(f2)
        c1 = self.append_cmd(m1, fl1, True)
        c2 = self.append_cmd(m2, fl2, True)
        await self.execute(c1, c2)
        self.appended(c1, m1)
        self.appended(c2, m2)

    async def act_search(self):
        rng = self.rng
        kw = rng.choice(KEYWORDS)
        v = rng.choice(["ALL", "UID ALL", "UNSEEN", "UID UNSEEN", "KEYWORD",
                        "UID KEYWORD", "SUBJECT", "UID SUBJECT", "UID RANGE"])
        uid = v.startswith("UID")
        crit = v.split()[-1]
        lo = hi = None
        if crit == "KEYWORD":
            args, want = f"KEYWORD {kw}", lambda m: kw.lower() in m.flags
        elif crit == "UNSEEN":
            args, want = "UNSEEN", lambda m: "\\seen" not in m.flags
        elif crit == "SUBJECT":
            args, want = f"SUBJECT {quote(self.prefix)}", lambda m: True
        elif crit == "RANGE":
            known = [u for u in self.uids if u is not None] or [1]
            lo = rng.choice(known)
            hi = lo + rng.randint(0, 30)
            args, want = f"UID {lo}:{hi}", lambda m: lo <= m.uid <= hi
        else:
            args, want = "ALL", lambda m: True
        c = self.cmd("UID SEARCH" if uid else "SEARCH", args,
                     read_others=True)
        live = self.live()
        await self.execute(c)
        if c.status != "OK":
            return
        if c.search is None:
            self.bad("SEARCH without * SEARCH", c)
            return
        res = set(c.search)
        if len(res) != len(c.search):
            self.bad("SEARCH answer twice", c, f"{c.search}")
        if not uid:
            if res and max(res) > c.search_exists:
                self.bad("SEARCH past EXISTS", c,
                         f"{max(res)} with {c.search_exists} messages")
            # own messages by sequence number, where it is known
            for m in live:
                s = self.seq_of(m)
                if s is not None and m.state == "live" and not m.uncertain \
                        and want(m) != (s in res):
                    self.bad(f"SEARCH {crit} wrong for own message", c,
                             f"{m!r} (message {s}) "
                             f"{'missing' if want(m) else 'found'}")
            if crit == "ALL" and res != set(range(1, c.search_exists + 1)):
                # RFC 2180 §4.3 lets a server leave out a message expunged
                # elsewhere that this session has not heard of yet (SEARCH
                # may not tell it); then the next NOOP must tell them all.
                missing = c.search_exists - len(res)
                n = self.cmd("NOOP")
                await self.execute(n)
                if len(n.expunged) < missing or not res <= set(
                        range(1, c.search_exists + 1)):
                    self.bad("SEARCH ALL not every message", c,
                             f"{len(res)} numbers with {c.search_exists} "
                             f"messages, {len(n.expunged)} EXPUNGE after")
            return
        if crit == "ALL" and not c.changed and len(res) != self.exists:
            self.bad("UID SEARCH ALL not every message", c,
                     f"{len(res)} UIDs with {self.exists} messages")
        if crit == "RANGE" and any(not lo <= u <= hi for u in res):
            self.bad("UID SEARCH outside the range", c,
                     f"UID {lo}:{hi} found {sorted(res)[:10]}")
        known = {u for u in self.uids if u is not None}
        if crit == "ALL" and not c.changed and not known <= res:
            self.bad("UID SEARCH ALL misses known UIDs", c,
                     f"{sorted(known - res)[:10]}")
        for m in live:
            if m.state == "live" and not m.uncertain and \
                    want(m) != (m.uid in res):
                self.bad(f"SEARCH {crit} wrong for own message", c,
                         f"{m!r} {'missing' if want(m) else 'found'}")

    async def act_noop(self):
        await self.execute(self.cmd("NOOP"))

    async def act_check(self):
        await self.execute(self.cmd("CHECK"))

    async def act_idle(self):
        c = self.cmd("IDLE", idle=self.rng.uniform(0.1, 1.0))
        await self.execute(c)

    async def act_status(self):
        folder = next(f for f in FOLDERS if f != self.selected) \
            if self.selected else self.rng.choice(FOLDERS)
        c = self.cmd("STATUS", f"{quote(folder)} "
                     "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
        await self.execute(c)
        if c.status != "OK":
            return
        if len(c.statuses) != 1:
            self.bad("STATUS without * STATUS", c)
            return
        items = c.statuses[0][1]
        live = self.live(folder)
        uv = items.get("UIDVALIDITY")
        if folder in self.uidvalidity and uv != self.uidvalidity[folder]:
            self.bad("STATUS UIDVALIDITY changed", c,
                     f"{folder}: {self.uidvalidity[folder]} -> {uv}")
        if items.get("MESSAGES", 0) < len(live):
            self.bad("STATUS MESSAGES below own messages", c,
                     f"{folder}: MESSAGES {items.get('MESSAGES')}, "
                     f"{len(live)} own there")
        if live and items.get("UIDNEXT", 0) <= max(m.uid for m in live):
            self.bad("STATUS UIDNEXT not above own UIDs", c,
                     f"{folder}: UIDNEXT {items.get('UIDNEXT')}, own "
                     f"{sorted(m.uid for m in live)}")
        unseen = [m for m in live if "\\seen" not in m.flags]
        if items.get("UNSEEN", 0) < len(unseen):
            self.bad("STATUS UNSEEN below own unseen", c,
                     f"{folder}: UNSEEN {items.get('UNSEEN')}, {len(unseen)} "
                     f"own unseen")

    async def act_list(self):
        c = self.cmd("LIST", '"" "*"')
        await self.execute(c)
        if c.status != "OK":
            return
        names = {bytes(mbox).decode("utf-8", "replace") for _, _, mbox
                 in c.lists}
        for f in FOLDERS:
            if f not in names:
                self.bad("LIST without a folder", c,
                         f"{f} not in {sorted(names)}")

    async def act_relogin(self):
        c = self.cmd("LOGOUT")
        try:
            await self.execute(c)
        except Broken:
            pass
        if not any(r.status == "BYE" for r in c.untagged):
            self.bad("LOGOUT without BYE", c)
        self.drop()
        await self.connect()

    # ------------------------------------------------------ checkpoint

    async def checkpoint(self):
        """The own messages of the selected folder, found by a SEARCH on
        the tag in their Subject or Message-ID, against the model."""
        folder = self.selected
        self.run.report.checkpoints += 1
        if self.rng.random() < 0.5:
            crit = f"SUBJECT {quote(self.prefix)}"
        else:
            crit = f"HEADER MESSAGE-ID {quote(self.prefix)}"
        c = self.cmd("UID SEARCH", crit)
        await self.execute(c)
        if c.status != "OK" or c.search is None:
            if c.status == "OK":
                self.bad("SEARCH without * SEARCH", c)
            return
        found = {}
        uids = sorted(set(c.search))
        f = None
        if uids:
            f = self.cmd("UID FETCH", f"{','.join(map(str, uids))} "
                         "(UID FLAGS ENVELOPE)")
            f.checkpoint = True     # flags are compared below, once
            await self.execute(f)
            if f.status != "OK":
                return
            fetched = set()
            doomed = {m.uid for m in self.models[folder].values()
                      if m.state == "doomed"}
            for s, d in f.fetch.items():
                if "UID" not in d or "ENVELOPE" not in d:
                    continue
                fetched.add(d["UID"])
                env = d["ENVELOPE"]
                mid = env[9].decode("utf-8", "replace") if env[9] else ""
                if not mid:
                    if d["UID"] not in doomed:
                        self.bad("checkpoint FETCH answers NIL ENVELOPE", f,
                                 f"UID {d['UID']} (found by {crit}): "
                                 f"{env}")
                    continue    # expunged meanwhile (RFC 2180 4.1.3)
                found.setdefault(mid, []).append(
                    (d["UID"], norm(d.get("FLAGS", []))))
            if set(uids) - fetched - doomed or fetched - set(uids):
                self.bad("SEARCH and FETCH disagree", f,
                         f"{crit} found UIDs {uids}, UID FETCH answered "
                         f"{sorted(fetched)}")
        model = self.models[folder]
        for mid, copies in found.items():
            if len(copies) > 1:
                self.bad("own message twice", f,
                         f"{mid} in {folder} at UIDs "
                         f"{[u for u, _ in copies]}")
            m = model.get(mid)
            if m is None:
                self.bad("own message unexpected", f or c,
                         f"{mid} in {folder} at UID {copies[0][0]}: never "
                         f"appended, copied or moved here")
        for mid, m in list(model.items()):
            got = found.get(mid)
            if m.uncertain:
                if got:
                    m.uid, m.flags = got[0]
                    m.state = "doomed" if "\\deleted" in m.flags else "live"
                else:
                    m.state = "gone"
                    m.uid = None
                m.uncertain = False
                continue
            if m.state == "gone":
                if got:
                    self.bad("own message back", f or c,
                             f"{mid} in {folder} at UID {got[0][0]} after it "
                             f"was expunged or moved away")
                continue
            if not got:
                if m.state == "live":
                    self.bad("own message missing", c,
                             f"{m!r} not found by {crit}")
                else:
                    m.state = "gone"     # another session's EXPUNGE
                continue
            uid, flags = got[0]
            if m.uid != uid:
                self.bad("own message changed UID", f,
                         f"{m!r} is now UID {uid} (UIDVALIDITY "
                         f"{self.uidvalidity.get(folder)} unchanged)")
                m.uid = uid
            if flags != m.flags:
                self.bad("own flags wrong at checkpoint", f,
                         f"{m!r}: server says {sorted(flags)}" + m.story())
                m.flags = flags
            m.reported = None

    # ---------------------------------------------------- the session

    def choose(self):
        rng = self.rng
        ro = self.readonly
        live = len(self.live())
        doomed = len(self.doomed())
        w = [(self.act_fetch_range, 14), (self.act_fetch_own, 10),
             (self.act_search, 10), (self.act_append, 7),
             (self.act_append_two, 3), (self.act_copy, 3),
             (self.act_noop, 4), (self.act_idle, 2), (self.act_check, 2),
             (self.act_status, 3), (self.act_list, 2), (self.act_switch, 6),
             (self.act_relogin, 1)]
        if not ro:
            w += [(self.act_store, 14), (self.act_move, 4 + 2 * (live > 4)),
                  (self.act_delete, 5 + 4 * (live > 4)),
                  (self.act_expunge, 2 + 6 * (doomed > 0))]
        total = sum(x for _, x in w)
        r = rng.uniform(0, total)
        for f, x in w:
            r -= x
            if r <= 0:
                return f
        return w[-1][0]

    async def run_session(self):
        await asyncio.sleep(self.n * 0.05)
        rng = self.rng
        next_cp = rng.randint(4, 8)
        while time.monotonic() < self.run.deadline:
            try:
                if self.writer is None:
                    await self.connect()
                    continue
                if self.selected is None:
                    await self.select(rng.choice(FOLDERS),
                                      examine=rng.random() < 0.2)
                    continue
                await self.choose()()
                self.step += 1
                next_cp -= 1
                if next_cp <= 0 and self.selected is not None:
                    await self.checkpoint()
                    next_cp = rng.randint(4, 8)
            except Broken:
                pass
        # The end: every own message in both folders, then LOGOUT.
        for attempt in range(2):
            try:
                if self.writer is None:
                    await self.connect()
                for folder in FOLDERS:
                    if await self.select(folder, examine=True):
                        await self.checkpoint()
                c = self.cmd("LOGOUT")
                await self.execute(c)
                self.drop()
                return
            except Broken:
                continue
