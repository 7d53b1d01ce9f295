"""`imapmerge report` (docs/report.md) against what the two servers hold.

Users are seeded with mail on legacy only, on new only and on both (as
the center's copier leaves it), in INBOX, Sent Items and a Japanese
folder; they log in through imapmerge and select every folder so that
the state is synced, and delete one migrated message (a tombstone).  The
report, read from the state file while the daemon runs, must then agree
with Message-ID sets taken from each Dovecot server directly.
"""

import datetime
import imaplib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

import tb
from proxy import BINARY, Imapmerge, variant_conf
from test_mailbox import new_only

FOLDERS = ["INBOX", "Sent Items", "プロジェクト"]
COLUMNS = ["legacy", "new", "paired", "legacy_only", "new_only",
           "tombstones"]
# Colours of the page's bar segments: paired, legacy-only, new-only.
COLOURS = {"paired": (0x2e, 0x8b, 0x57), "legacy": (0xe0, 0x7b, 0x00),
           "newonly": (0x3a, 0x6f, 0xd8)}


@pytest.fixture(scope="module")
def rep(testbed):
    """imapmerge with a state directory of its own (so --all sees only
    this module's users) and legacy-writes none."""
    tag = uuid.uuid4().hex[:6]
    state = os.path.join(testbed.dir, f"report-state-{tag}")
    conf, imap, imaps = variant_conf(
        testbed, f"report-{tag}.conf",
        replace=[(f'state-dir "{testbed.dir}/imapmerge-state"',
                  f'state-dir "{state}"'),
                 ("poll-interval 2s", "poll-interval 2s\nlegacy-writes none")])
    im = Imapmerge(conf, os.path.join(testbed.dir, f"imapmerge-report-{tag}.log"),
                   imap, imaps)
    im.start()
    im.state_dir = state
    yield im
    im.stop()


def wire(folder):
    return '"' + tb.mutf7_encode(folder) + '"'


def login(testbed, im, user):
    c = imaplib.IMAP4_SSL("localhost", im.imaps_port,
                          ssl_context=testbed.ctx(), timeout=60)
    c.login(*user)
    return c


def report(im, *args, check=True):
    p = subprocess.run([BINARY, "report", "-f", im.conf, *args],
                       capture_output=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr.decode()
    return p


def server_ids(testbed, user, side, folder):
    """Message-IDs in a folder of one server, read directly."""
    c = testbed.imaps(side, *user)
    name = folder
    if side == "legacy" and folder in tb.NEW_TO_LEGACY:
        name = tb.NEW_TO_LEGACY[folder]
    typ, data = c.select(wire(name), readonly=True)
    assert typ == "OK", (side, folder, data)
    ids = []
    if int(data[0]) > 0:
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        for item in data:
            if isinstance(item, tuple):
                ids.append(re.search(rb"<[^>]*>", item[1]).group(0).decode())
    c.logout()
    assert len(ids) == len(set(ids))
    return set(ids)


def seed_user(testbed, im, user, plan, seed_base):
    """plan: folder -> (count, migrated, new_only).  Returns the Message-IDs
    deleted through imapmerge (one migrated message of INBOX)."""
    name, _ = user
    inbox_ids = None
    for k, (folder, (count, migrated, fresh)) in enumerate(plan.items()):
        ids = testbed.seed(name, folder=folder, count=count,
                           migrated=migrated, seed_value=seed_base + k)
        new_only(testbed, name, folder, fresh, seed_value=seed_base + 50 + k)
        if folder == "INBOX":
            inbox_ids = ids
    c = login(testbed, im, user)
    for folder in plan:
        typ, data = c.select(wire(folder))
        assert typ == "OK", (folder, data)
        assert int(data[0]) == sum(plan[folder][::2])
    # Delete a migrated message: with legacy-writes none its legacy copy
    # stays and a tombstone keeps it hidden.
    victim = inbox_ids[0]
    c.select("INBOX")
    typ, data = c.uid("SEARCH", "HEADER", "Message-ID", victim)
    assert typ == "OK" and len(data[0].split()) == 1, data
    c.uid("STORE", data[0].decode(), "+FLAGS", "(\\Deleted)")
    assert c.expunge()[0] == "OK"
    c.noop()
    c.logout()
    return {victim}


def expected(testbed, user, folder, deleted):
    """The report's counts, from the servers: the view hides what the
    user deleted through imapmerge."""
    legacy = server_ids(testbed, user, "legacy", folder)
    new = server_ids(testbed, user, "new", folder)
    gone = deleted if folder == "INBOX" else set()
    assert not gone & new and gone <= legacy
    legacy -= gone
    return {"legacy": len(legacy), "new": len(new),
            "paired": len(legacy & new), "legacy_only": len(legacy - new),
            "new_only": len(new - legacy),
            # Each deleted message leaves one tombstone.
            "tombstones": len(gone)}


PLAN_A = {"INBOX": (8, 4, 3), "Sent Items": (5, 2, 1), "プロジェクト": (4, 1, 2)}
PLAN_B = {"INBOX": (3, 2, 1)}


@pytest.fixture(scope="module")
def users(testbed, rep):
    a = tb.take_user(testbed.dir)
    b = tb.take_user(testbed.dir)
    t0 = time.time()
    deleted = {a[0]: seed_user(testbed, rep, a, PLAN_A, 61),
               b[0]: seed_user(testbed, rep, b, PLAN_B, 71)}
    return a, b, deleted, t0


def check_sync_time(text, t0):
    when = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert t0 - 2 <= when <= time.time() + 2, text


def test_report_json_matches_servers(testbed, rep, users):
    a, _, deleted, t0 = users
    out = json.loads(report(rep, "--json", a[0]).stdout)
    assert out["user"] == a[0]
    assert [f["name"] for f in out["folders"]] == FOLDERS
    totals = dict.fromkeys(COLUMNS, 0)
    for f in out["folders"]:
        want = expected(testbed, a, f["name"], deleted[a[0]])
        assert {k: f[k] for k in COLUMNS} == want, f["name"]
        assert set(f) == {"name", *COLUMNS, "last_sync"}
        check_sync_time(f["last_sync"], t0)
        for k in COLUMNS:
            totals[k] += want[k]
    assert {k: out["totals"][k] for k in COLUMNS} == totals
    # Something of each kind was there to count.
    assert all(totals[k] > 0 for k in COLUMNS)


def test_report_text_has_a_row_per_folder(testbed, rep, users):
    a, _, deleted, _ = users
    lines = report(rep, a[0]).stdout.decode().splitlines()
    for folder in FOLDERS + ["total"]:
        rows = [l for l in lines if l.startswith(folder + " ")]
        assert len(rows) == 1, (folder, lines)
    inbox = next(l for l in lines if l.startswith("INBOX "))
    want = expected(testbed, a, "INBOX", deleted[a[0]])
    assert inbox.split()[1:7] == [str(want[k]) for k in COLUMNS]
    # Aligned: every row's sync time starts in the same column, counted
    # in display cells (a Japanese character takes two).
    def cells(s):
        return sum(2 if ord(ch) >= 0x2e80 else 1 for ch in s)
    body = [l for l in lines if re.search(r"\d{4}-\d\d-\d\dT|never$", l)]
    assert len(body) == 4
    assert len({cells(l) for l in body}) == 1, body


def test_report_all_sums_users(testbed, rep, users):
    a, b, deleted, _ = users
    one = {u[0]: json.loads(report(rep, "--json", u[0]).stdout)
           for u in (a, b)}
    out = json.loads(report(rep, "--json", "--all").stdout)
    assert [u["user"] for u in out["users"]] == sorted([a[0], b[0]])
    for u in out["users"]:
        assert {k: u[k] for k in COLUMNS} == \
            {k: one[u["user"]]["totals"][k] for k in COLUMNS}
    by_name = {f["name"]: f for f in out["folders"]}
    assert sorted(by_name) == sorted(FOLDERS)
    inbox_b = expected(testbed, b, "INBOX", deleted[b[0]])
    for name, f in by_name.items():
        want = expected(testbed, a, name, deleted[a[0]])
        if name == "INBOX":
            want = {k: want[k] + inbox_b[k] for k in COLUMNS}
        assert {k: f[k] for k in COLUMNS} == want, name
    assert {k: out["totals"][k] for k in COLUMNS} == \
        {k: one[a[0]]["totals"][k] + one[b[0]]["totals"][k] for k in COLUMNS}
    text = report(rep, "--all").stdout.decode().splitlines()
    for name in (a[0], b[0]):
        assert sum(l.startswith(name + " ") for l in text) == 1, text


def test_report_errors(testbed, rep, users):
    p = report(rep, "nosuchuser", check=False)
    assert p.returncode == 1
    assert b'no state for user "nosuchuser"' in p.stderr
    assert not os.path.exists(os.path.join(rep.state_dir, "nosuchuser.db"))
    for args in ([], ["a", "b"], ["--all", "a"], ["--bogus", "a"]):
        p = report(rep, *args, check=False)
        assert p.returncode == 1 and b"usage: imapmerge report" in p.stderr, \
            args


def chromium(*args, timeout=90):
    profile = tempfile.mkdtemp(prefix="imapmerge-chromium-")
    try:
        return subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             f"--user-data-dir={profile}", *args],
            capture_output=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def near(pixel, colour, tol=16):
    return all(abs(p - c) <= tol for p, c in zip(pixel, colour))


def test_report_html_renders(testbed, rep, users, tmp_path):
    from PIL import Image

    a, _, _, _ = users
    page = tmp_path / "report.html"
    report(rep, "--html", str(page), a[0])
    html = page.read_text(encoding="utf-8")
    assert f"<title>imapmerge — migration report for {a[0]}</title>" in html
    assert "<script" not in html and "http" not in html
    assert "プロジェクト" in html

    shot = tmp_path / "report.png"
    p = chromium(f"--screenshot={shot}", "--window-size=1000,800",
                 f"file://{page}")
    assert shot.exists(), p.stderr.decode(errors="replace")[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1000, 800)
    pixels = list(img.getdata())
    assert len(set(pixels)) > 2, "blank page"
    for name, colour in COLOURS.items():
        n = sum(1 for px in pixels if near(px, colour))
        assert n > 100, f"{name} bars not drawn ({n} pixels)"

    p = chromium("--dump-dom", f"file://{page}")
    dom = p.stdout.decode()
    assert "</html>" in dom, p.stderr.decode(errors="replace")[-2000:]
    assert len(re.findall(r'class="bar"', dom)) == len(FOLDERS)
    assert "プロジェクト" in dom
