"""imapmerge under valgrind --leak-check=full for a whole client session:
login to both servers, SELECT of a merged folder, FETCH of flags and
bodies, LOGOUT, then SIGTERM.  The shutdown frees everything it holds, so
any block still unreachable at exit is a leak.
"""

import imaplib
import os
import re
import shutil

import pytest

from proxy import SANITIZED, Imapmerge, variant_conf


@pytest.mark.skipif(SANITIZED, reason="valgrind cannot run an ASan build")
def test_session_leaks_nothing(testbed, user):
    assert shutil.which("valgrind"), "tests/deps installs valgrind"
    name, password = user
    testbed.seed(name, count=12, migrated=5, size=20000, seed_value=91)
    path, imap, imaps = variant_conf(
        testbed, "valgrind.conf",
        [("connect-timeout 5s", "connect-timeout 30s")])
    report = os.path.join(testbed.dir, "valgrind.txt")
    im = Imapmerge(path, os.path.join(testbed.dir, "valgrind.log"), imap,
                   imaps, start_timeout=60,
                   wrap=["valgrind", "--leak-check=full",
                         "--show-leak-kinds=definite,indirect",
                         "--errors-for-leak-kinds=definite,indirect",
                         "--track-fds=no", "--num-callers=30",
                         f"--log-file={report}"])
    im.start()
    try:
        c = imaplib.IMAP4_SSL("localhost", imaps, ssl_context=testbed.ctx(),
                              timeout=120)
        c.login(name, password)
        typ, data = c.select("INBOX")
        assert typ == "OK" and data == [b"12"], data
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        assert typ == "OK"
        assert len([x for x in data if isinstance(x, tuple)]) == 12
        typ, data = c.uid("SEARCH", "ALL")
        assert typ == "OK" and len(data[0].split()) == 12
        c.logout()
    finally:
        rc = im.stop(timeout=60)
    text = open(report).read()
    assert rc == 0, text[-3000:]
    summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    assert summary and summary.group(1) == "0", text[-6000:]
    lost = re.search(r"definitely lost: ([\d,]+) bytes", text)
    assert lost is None or lost.group(1) == "0", text[-6000:]
