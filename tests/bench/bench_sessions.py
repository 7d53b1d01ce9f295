#!/usr/bin/python3
"""Connection scale (make bench): 1,000 and then 5,000 sessions held at
once by one imapmerge, each logged in over TLS to both test-bed servers
over TLS, in merged INBOX and in IDLE (tests/integration/loadclient.py).
Prints `name value unit` lines:

  session_kb_1000, session_kb_5000   growth of imapmerge's resident memory
                                     per session (target <= 150)
  login_cpu_ms                       imapmerge's CPU time (user + system)
                                     per session opened: TLS handshakes with
                                     the client and both servers, two
                                     logins, folder discovery, SELECT
  sessions_failed                    sessions that did not open (target 0)
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import benchenv  # noqa: E402,F401  (paths to the test bed and helpers)
import tb  # noqa: E402
from loadclient import Load, raise_fd_limit  # noqa: E402
from proxy import Imapmerge  # noqa: E402

STEPS = (1000, 5000)
USERS = 20


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    raise_fd_limit(max(STEPS) + 512)
    scratch = tempfile.mkdtemp(prefix="imapmerge-bench-")
    env = tb.up(scratch, ttl=1800)
    im = None
    loads = []
    out = {}
    try:
        users = [(f"scale{i:02d}", "secret") for i in range(USERS)]
        for name, _ in users:
            tb.create_user_dirs(scratch, name)
        for side in ("new", "legacy"):
            tb.write_passwd(scratch, side, {**tb.read_users(scratch),
                                            **dict(users)})
        time.sleep(1.1)         # Dovecot re-reads passwd once a second
        for i, (name, _) in enumerate(users):
            tb.seed(scratch, name, count=20, migrated=10, seed_value=500 + i)
        conf = env["IMAPMERGE_CONF"]
        with open(conf) as f:
            text = f.read().replace("poll-interval 2s", "poll-interval 30s")
        with open(conf, "w") as f:
            f.write(text + "max-preauth-per-ip 10000\nlog-level warn\n")
        im = Imapmerge(conf, os.path.join(scratch, "imapmerge.log"),
                       env["IMAPMERGE_IMAP_PORT"],
                       env["IMAPMERGE_IMAPS_PORT"]).start()
        base_kb = im.rss_kb()
        base_cpu = cpu_seconds(im.proc.pid)
        held = failed = 0
        for step in STEPS:
            load = Load("localhost", im.imaps_port, env["TESTBED_CA"], users,
                        step - held)
            loads.append(load)
            load.open_all()
            failed += len(load.errors())
            load.hold(3)
            held = step
            out[f"session_kb_{step}"] = (im.rss_kb() - base_kb) / step
        out["login_cpu_ms"] = (cpu_seconds(im.proc.pid) - base_cpu) * 1000 \
            / held
        out["sessions_failed"] = failed
    finally:
        for load in loads:
            load.close()
        if im is not None:
            im.stop(timeout=30)
        tb.down(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    for k, v in out.items():
        unit = "kB" if "_kb" in k else "ms" if k.endswith("_ms") else "count"
        print(f"{k} {v:.4f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
