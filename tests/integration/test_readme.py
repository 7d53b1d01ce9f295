"""README.md's "Watch it work" block, run line by line as it stands, on a
copy of the source tree without build/ — what a new user does after
cloning: make demo (build, test bed, imapmerge in front), mbsync through
imapmerge, the center's copier, mbsync again, make demo-down.  Checks that
the demo printed the mail-client settings, that mbsync got the merged tree
(alice's 40 INBOX messages once each, Sent Items beside it), that the
copier really copied, and that the second sync changed nothing: no
duplicate and no UID moved (mbsync's file names carry the UIDs)."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from proxy import SANITIZED

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MARK = "<!-- tests/integration/test_readme.py runs this block"


def readme_lines():
    with open(os.path.join(TOP, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARK):], re.S)
    return [line for line in block.group(1).splitlines() if line.strip()]


def source_copy(dest):
    """The tracked and new (not ignored) files, as a fresh clone has them."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard",
                          "-z"], cwd=TOP, check=True, capture_output=True)
    for rel in out.stdout.decode().split("\0"):
        if not rel or rel.startswith("build/"):
            continue
        src = os.path.join(TOP, rel)
        if not os.path.exists(src):
            continue            # deleted, not yet committed
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


def maildir(top):
    """folder/cur-or-new/file names under an mbsync Maildir tree."""
    found = set()
    for root, _, files in os.walk(top):
        if os.path.basename(root) in ("cur", "new"):
            found.update(os.path.relpath(os.path.join(root, f), top)
                         for f in files)
    return found


@pytest.mark.skipif(SANITIZED, reason="builds and runs a plain imapmerge of "
                    "its own: nothing for the sanitizers to see")
def test_readme_watch_it_work():
    lines = readme_lines()
    assert lines[0] == "make demo" and lines[-1] == "make demo-down"
    # Not pytest's tmp_path: Dovecot's users must reach the demo's files.
    scratch = tempfile.mkdtemp(prefix="imapmerge-readme-")
    os.chmod(scratch, 0o755)
    src = os.path.join(scratch, "imapmerge")
    source_copy(src)
    syncs, outputs = [], {}
    try:
        for line in lines:
            r = subprocess.run(["sh", "-ec", line], cwd=src, text=True,
                               capture_output=True, timeout=900)
            assert r.returncode == 0, (line, r.stdout[-3000:],
                                       r.stderr[-3000:])
            outputs.setdefault(line.split()[0], r.stdout)
            if line.startswith("mbsync"):
                syncs.append(maildir(os.path.join(src, "build/demo/Maildir")))
    finally:
        subprocess.run(["make", "demo-down"], cwd=src, timeout=120,
                       capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
    demo = outputs["make"]                # the first: make demo
    assert "imapmerge is running in front of them" in demo, demo[-2000:]
    for want in ("Incoming (IMAP)", "Outgoing (SMTP)", "mbsync -c"):
        assert want in demo, want
    assert "INBOX" in outputs["ls"] and "Sent Items" in outputs["ls"]
    copied = re.search(r"copied (\d+) messages", outputs["tests/testbed/testbed"])
    assert copied and int(copied.group(1)) > 0, outputs["tests/testbed/testbed"]
    first, second = syncs
    inbox = [f for f in first if f.startswith("INBOX/")]
    assert len(inbox) == 40, sorted(first)
    assert any(f.startswith("Sent Items/") for f in first), sorted(first)
    assert second == first, (sorted(first ^ second))
