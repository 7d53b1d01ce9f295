"""Load: a thousand client sessions at once, each logged in to both test-bed
servers over TLS, in merged INBOX and in IDLE, held by one imapmerge.

The figure it measures (resident memory per session) is written to
build/load.json for docs/perf.md.
"""

import json
import os

import tb
from loadclient import Load, raise_fd_limit
from proxy import BINARY, SANITIZED
from test_resilience import start

SESSIONS = 1000
USERS = 20
MESSAGES = 20
RSS_LIMIT_MB = 300


def test_thousand_sessions_idle_in_merged_inbox(testbed):
    users = [tb.take_user(testbed.dir) for _ in range(USERS)]
    for i, (name, _) in enumerate(users):
        testbed.seed(name, count=MESSAGES, migrated=MESSAGES // 2,
                     seed_value=400 + i)
    raise_fd_limit(SESSIONS + 256)
    # Production timing, and room for a thousand logins from one address.
    im = start(testbed, "load", [("poll-interval 2s", "poll-interval 30s")],
               extra="max-preauth-per-ip 2000\nlog-level info\n")
    load = Load("localhost", im.imaps_port, testbed.TESTBED_CA, users,
                SESSIONS)
    try:
        base_kb = im.rss_kb()
        seconds = load.open_all()
        errors = load.errors()
        assert not errors, f"{len(errors)} sessions failed: {errors[:5]}"
        assert {s.exists for s in load.sessions} == {MESSAGES}
        load.hold(2)
        rss_kb = im.rss_kb()
        per_session_kb = (rss_kb - base_kb) / SESSIONS
        figures = {
            "sessions": SESSIONS, "users": USERS,
            "rss_idle_daemon_kb": base_kb, "rss_kb": rss_kb,
            "per_session_kb": round(per_session_kb, 1),
            "open_seconds": round(seconds, 1),
            "login_p50_s": round(sorted(s.login_s for s in load.sessions)
                                 [SESSIONS // 2], 3),
        }
        if not SANITIZED:
            out = os.path.join(os.path.dirname(BINARY), "load.json")
            with open(out, "w") as f:
                json.dump(figures, f, indent=1)
        print(figures)
        if not SANITIZED:
            assert rss_kb < RSS_LIMIT_MB * 1024, figures
        # Every session is still there: DONE is answered, LOGOUT too.
        load.finish_all()
        errors = load.errors()
        assert not errors, f"{len(errors)} sessions failed: {errors[:5]}"
        assert im.alive()
    finally:
        load.close()
        im.stop()
