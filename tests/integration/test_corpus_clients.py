"""Real-world mail shapes read by real client libraries, directly from the
new Dovecot and through imapmerge: what the client sees must be the same.

The corpus (tests/testbed/corpus.py: multipart shapes, Japanese charsets,
groups, long and 8-bit headers, odd Message-IDs, a DSN, a signed shape,
and Python's own email test messages) lies twice in one user's mailbox:

- `Corpus`, on the new server only: imapmerge shows the new copies;
- `CorpusBoth`, every message on both servers with the same date and
  flags, as the migration leaves a folder: imapmerge pairs them and must
  read exactly like the new server's folder.

Two clients read each folder through both doors:

- imapflow (Node, the library under many web mail apps;
  tests/clients/imapflow-fetch.js): SELECT, then envelope, bodyStructure,
  flags, size, internalDate and a header-fields fetch of every message,
  and download() of the whole message and of each leaf body part;
- imap-tools (Python; Debian python3-imap-tools): MailBox.fetch of full
  messages and what it parses from them.

Only UIDs (imapmerge's are its own) and \\Recent (imapmerge never sets it)
are left out of the comparison; any other difference fails the test and
is listed field by field with the message it belongs to.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest

import corpus
import tb

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLIENTS = os.path.join(ROOT, "tests", "clients")
START = 1700000000                    # internal dates: 2023-11-14 onwards
FOLDERS = ["Corpus", "CorpusBoth"]
SHOWN = 400                           # characters of a value in a report


@pytest.fixture(scope="module")
def mail(testbed):
    """(user, password, [(name, bytes)]) with the corpus in both folders."""
    name, password = tb.take_user(testbed.dir)
    msgs = corpus.corpus()
    corpus.deliver_corpus(testbed.dir, name, "Corpus", "new", START, msgs)
    for side in ("legacy", "new"):
        corpus.deliver_corpus(testbed.dir, name, "CorpusBoth", side, START,
                              msgs)
    return name, password, msgs


@pytest.fixture(scope="module")
def imapflow():
    """Node with imapflow in tests/clients/node_modules (npm ci when
    missing); skips only when that cannot be had."""
    for cmd in ("node", "npm"):
        if shutil.which(cmd) is None:
            pytest.skip(f"no {cmd}: `tests/deps clients` installs Debian's "
                        "nodejs and npm")
    r = subprocess.run([os.path.join(CLIENTS, "install")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=300)
    if r.returncode != 0:
        pytest.skip("imapflow could not be installed from the npm registry:"
                    "\n" + r.stdout.decode("utf-8", "replace")[-2000:])
    return os.path.join(CLIENTS, "imapflow-fetch.js")


# ---------------------------------------------------------------- clients

def read_imapflow(script, testbed, port, user, password, folder):
    r = subprocess.run(["node", script, "localhost", str(port), user,
                        password, testbed.TESTBED_CA, folder],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=60, cwd=CLIENTS)
    assert r.returncode == 0, (port, folder, r.stderr.decode("utf-8",
                                                             "replace"))
    return json.loads(r.stdout)


def read_imap_tools(testbed, port, user, password, folder):
    from imap_tools import MailBox
    from imap_tools.message import MailMessage

    class Kept(MailMessage):
        """MailMessage that also keeps the bytes the server sent."""
        def __init__(self, fetch_data):
            super().__init__(fetch_data)
            self.raw = self._get_message_data_parts(fetch_data)[0]

    def addresses(values):
        return [{"name": a.name, "email": a.email, "full": a.full}
                for a in values]

    def attachment(a):
        return {"filename": a.filename, "content_type": a.content_type,
                "content_disposition": a.content_disposition,
                "content_id": a.content_id, "size": a.size,
                "payload": base64.b64encode(a.payload).decode()}

    def field(msg, name, convert=lambda v: v):
        """One attribute as the application gets it, or the exception it
        raises (that must be the same too)."""
        try:
            return convert(getattr(msg, name))
        except Exception as e:              # noqa: BLE001
            return f"raises {type(e).__name__}: {e}"

    out = []
    mb = MailBox("localhost", port, ssl_context=testbed.ctx(), timeout=30)
    mb.email_message_class = Kept
    with mb.login(user, password, initial_folder=folder):
        for msg in mb.fetch(mark_seen=False):
            out.append({
                "uid": msg.uid,
                "flags": sorted(msg.flags),
                "size_rfc822": msg.size_rfc822,
                "size": field(msg, "size"),
                "raw": msg.raw.decode("latin-1"),
                "subject": field(msg, "subject"),
                "from_": field(msg, "from_"),
                "from_values": field(msg, "from_values",
                                     lambda v: v and addresses([v])),
                "to_values": field(msg, "to_values", addresses),
                "cc_values": field(msg, "cc_values", addresses),
                "bcc_values": field(msg, "bcc_values", addresses),
                "reply_to_values": field(msg, "reply_to_values", addresses),
                "date_str": field(msg, "date_str"),
                "date": field(msg, "date", lambda d: d.isoformat()),
                "headers": field(msg, "headers",
                                 lambda h: {k: list(v) for k, v in
                                            sorted(h.items())}),
                "text": field(msg, "text"),
                "html": field(msg, "html"),
                "attachments": field(msg, "attachments",
                                     lambda a: [attachment(x) for x in a]),
            })
    return {"messages": out}


# ---------------------------------------------------------------- compare

def without_recent(flags):
    return [f for f in flags if f != "\\Recent"]


def differences(direct, merged, names, path=""):
    """[(message, field path, direct value, merged value)], UIDs and
    \\Recent left out."""
    out = []

    def walk(a, b, p, who):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if k == "uid":
                    continue
                walk(a.get(k, "<absent>"), b.get(k, "<absent>"),
                     f"{p}.{k}" if p else k, who)
        elif isinstance(a, list) and isinstance(b, list) and \
                len(a) == len(b) and not all(isinstance(x, str)
                                             for x in a + b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{p}[{i}]", who)
        elif a != b:
            out.append((who, p, a, b))

    walk(direct.get("mailbox"), merged.get("mailbox"), "mailbox", "(folder)")
    dm, mm = direct["messages"], merged["messages"]
    if len(dm) != len(mm):
        out.append(("(folder)", "number of messages", len(dm), len(mm)))
    for i, (a, b) in enumerate(zip(dm, mm)):
        a, b = dict(a), dict(b)
        a["flags"], b["flags"] = without_recent(a["flags"]), \
            without_recent(b["flags"])
        who = f"#{i + 1} {names[i] if i < len(names) else '?'}"
        walk(a, b, "", who)
    return out


def shown(v):
    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else \
        repr(v)
    return s if len(s) <= SHOWN else s[:SHOWN] + f"... ({len(s)} chars)"


def report(client, folder, diffs):
    lines = [f"{client}, folder {folder}: {len(diffs)} difference(s) "
             "between Dovecot directly and imapmerge"]
    for who, p, a, b in diffs:
        lines.append(f"- message {who}, {p}:\n    direct: {shown(a)}\n"
                     f"    merged: {shown(b)}")
        if isinstance(a, str) and isinstance(b, str):
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                      min(len(a), len(b)))
            lines.append(f"    first difference at character {at}: "
                         f"direct {a[at:at + 60]!r} merged {b[at:at + 60]!r}")
    return "\n".join(lines)


def check_order(got, msgs, raw_of):
    """The test bed's own promise: Dovecot shows the corpus in delivery
    order, so message i of a reply is corpus message i."""
    def norm(b):
        return b.replace(b"\r\n", b"\n")
    want = [hashlib.sha256(norm(data)).hexdigest() for _, data in msgs]
    have = [hashlib.sha256(norm(raw_of(m))).hexdigest()
            for m in got["messages"]]
    assert have == want, "Dovecot does not list the corpus in delivery order"


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("folder", FOLDERS)
def test_imapflow_reads_corpus_as_dovecot(testbed, imapmerge, mail,
                                          imapflow, folder):
    user, password, msgs = mail
    names = [n for n, _ in msgs]
    t0 = time.monotonic()
    direct = read_imapflow(imapflow, testbed, testbed.env["NEW_IMAPS_PORT"],
                           user, password, folder)
    merged = read_imapflow(imapflow, testbed, imapmerge.imaps_port, user,
                           password, folder)
    check_order(direct, msgs,
                lambda m: base64.b64decode(m["source"]["base64"]))
    diffs = differences(direct, merged, names)
    assert not diffs, report("imapflow", folder, diffs)
    assert time.monotonic() - t0 < 30


@pytest.mark.parametrize("folder", FOLDERS)
def test_imap_tools_reads_corpus_as_dovecot(testbed, imapmerge, mail,
                                            folder):
    pytest.importorskip("imap_tools",
                        reason="Debian python3-imap-tools: tests/deps clients")
    user, password, msgs = mail
    names = [n for n, _ in msgs]
    t0 = time.monotonic()
    direct = read_imap_tools(testbed, int(testbed.env["NEW_IMAPS_PORT"]),
                             user, password, folder)
    merged = read_imap_tools(testbed, imapmerge.imaps_port, user, password,
                             folder)
    check_order(direct, msgs, lambda m: m["raw"].encode("latin-1"))
    diffs = differences(direct, merged, names)
    assert not diffs, report("imap-tools", folder, diffs)
    assert time.monotonic() - t0 < 30
