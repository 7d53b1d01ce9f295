#!/usr/bin/python3
"""Proxy benchmarks (make bench): the same work three ways, in one run —
directly against the new Dovecot, through nginx's mail proxy (pass-through,
tests/bench/nginxmail.py) and through imapmerge — with ratios pair by pair.

The mailbox: 2,000 messages of 100 kB in INBOX on the new server (the
legacy INBOX is empty, so imapmerge's merged view routes every body to the
new server, as nginx and the direct client do).  Every route is TLS from
the client; imapmerge's server legs are TLS too, nginx's is plain (nginx
cannot do TLS upstream), so a fourth route, imapmerge_plain, is a second
imapmerge with plain server legs: the like-for-like comparison.  Rounds
alternate the routes and each figure is the median of its rounds; a ratio
is the median of the ratios of each round, route against route measured
moments apart (the same for the added NOOP latency), so that a machine
that slows down or speeds up between rounds moves both sides of a ratio
together.  Prints `name value unit` lines:

  bulk_mbps_{direct,nginx,imapmerge}   UID FETCH 1:* BODY.PEEK[] of the
                                       2,000 messages, MB/s received
  bulk_vs_direct, bulk_vs_nginx        imapmerge / direct, imapmerge / nginx
                                       (targets >= 0.85 and >= 1.0)
  bulk_plain_vs_nginx                  the same with imapmerge's server legs
                                       plain too, as nginx's are
  noop_p50_us_*, noop_p99_us_*         NOOP round trip in the selected INBOX
                                       after a quiet spell, as a client
                                       that polls sends it
  noop_added_p50_us                    imapmerge p50 - direct p50 (<= 100)
  noop_busy_*                          the same right after other commands:
                                       imapmerge asks both servers
  append_mbps_{direct,imapmerge}       APPEND of 1 MB messages, MB/s sent
  append_vs_direct                     (target >= 0.8)

Every process above shares the machine's cores, so imapmerge's CPU time
is taken from Dovecot's, which in service runs on machines of its own.
A last set of rounds shows what that costs: Dovecot on the first core,
the client and imapmerge on the second (imapmerge shares its core with
the client, which the direct route has to itself):

  apart_{bulk,append}_mbps_{direct,imapmerge}
  apart_bulk_vs_direct, apart_append_vs_direct
"""

import base64
import operator
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import benchenv  # noqa: E402,F401  (paths to the test bed and helpers)
import tb  # noqa: E402
from nginxmail import NginxMail  # noqa: E402
from proxy import Imapmerge  # noqa: E402
from rawimap import Raw  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_BULK_MESSAGES", "2000"))
SIZE = 100 * 1024
ROUNDS = int(os.environ.get("BENCH_PROXY_ROUNDS", "5"))
NOOPS = 2000
QUIET = 1.5                 # seconds: over imapmerge's backend-idle-after
APPENDS = 40
USER, PASSWORD = "bulk", "secret"


def seed_bulk(tbdir, count):
    """count messages of SIZE bytes straight into the new server's INBOX."""
    d = tb.folder_dir(tbdir, "new", USER, "INBOX")
    uid, gid = tb.dovecot_ids()
    rng = random.Random(7)
    line = 76
    for i in range(count):
        when = 1700000000 + i * 60
        head = (f"Message-ID: <bulk-{i}@example.ac.jp>\r\n"
                f"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                f"From: Sender <s@example.ac.jp>\r\nTo: {USER}@example.ac.jp"
                f"\r\nSubject: Bulk {i}\r\n\r\n").encode()
        raw = base64.b64encode(rng.randbytes((SIZE - len(head)) * 3 // 4))
        body = b"\r\n".join(raw[j:j + line] for j in range(0, len(raw), line))
        p = os.path.join(d, "cur", f"{when}.M{i}P1.bulk:2,S")
        with open(p, "wb") as f:
            f.write(head + body[:SIZE - len(head) - 2] + b"\r\n")
        os.utime(p, (when, when))
    subprocess.run(["chown", "-R", f"{uid}:{gid}", d], check=True)


def one_message(i):
    body = (b"x" * 998 + b"\r\n") * 1024
    return (f"Message-ID: <append-{i}-{time.time_ns()}@example.ac.jp>\r\n"
            f"Subject: append {i}\r\n\r\n").encode() + body[:1 << 20]


def bulk(ca, port):
    c = Raw(ca, port, USER, PASSWORD)
    c.cmd("EXAMINE INBOX")
    t0 = time.monotonic()
    n = c.cmd("UID FETCH 1:* BODY.PEEK[]")
    t = time.monotonic() - t0
    c.close()
    if n < MESSAGES * SIZE:
        raise RuntimeError(f"port {port}: only {n} bytes")
    return n / t / 1e6


def noops(ca, port):
    """NOOP round trips in the selected INBOX, p50 and p99: first right
    after SELECT, back to back (imapmerge asks both servers at each), then
    after the connection was quiet for longer than backend-idle-after (1
    s), as a client that polls sends them (imapmerge's server connections
    watch the folder in IDLE, and it answers from what they told)."""
    def p50_p99(rtt):
        rtt = sorted(rtt)
        return rtt[len(rtt) // 2], rtt[int(len(rtt) * 0.99)]
    c = Raw(ca, port, USER, PASSWORD)
    c.cmd("SELECT INBOX")
    c.round_trips("NOOP", 100)              # warm up
    busy = p50_p99(c.round_trips("NOOP", NOOPS))
    time.sleep(QUIET)
    quiet = p50_p99(c.round_trips("NOOP", NOOPS))
    c.close()
    return busy, quiet


def appends(ca, port, folder, direct_port):
    """APPENDs to an empty folder: what the previous route appended is
    expunged first (directly), so no route writes into a bigger folder."""
    d = Raw(ca, direct_port, USER, PASSWORD)
    d.cmd(f"SELECT {folder}")
    d.cmd("UID STORE 1:* +FLAGS.SILENT (\\Deleted)")
    d.cmd("EXPUNGE")
    d.close()
    c = Raw(ca, port, USER, PASSWORD)
    msgs = [one_message(i) for i in range(APPENDS)]
    t0 = time.monotonic()
    for m in msgs:
        c.cmd(f"APPEND {folder}", m)
    t = time.monotonic() - t0
    c.close()
    return sum(len(m) for m in msgs) / t / 1e6


def service_conf(path):
    """The test bed polls every 2 s, for quick tests; in service (and
    here) it is the default, 30 s."""
    with open(path) as f:
        text = f.read()
    assert "poll-interval 2s" in text
    with open(path, "w") as f:
        f.write(text.replace("poll-interval 2s", "poll-interval 30s"))
    return path


def plain_upstream(scratch, env):
    """A second imapmerge whose server legs are plain IMAP, as nginx's
    are: the like-for-like comparison with nginx."""
    ports = {k: env[k] for k in tb.PORT_NAMES if k in env}
    (ports["IMAPMERGE_IMAP_PORT"], ports["IMAPMERGE_IMAPS_PORT"],
     ports["IMAPMERGE_SUBMISSION_PORT"],
     ports["IMAPMERGE_SUBMISSIONS_PORT"]) = tb.free_ports(4)
    path = tb.write_imapmerge_conf(scratch, ports, "plain-upstream.conf")
    with open(path) as f:
        text = f.read()
    for side in ("LEGACY", "NEW"):
        old = f"imap localhost:{env[side + '_IMAPS_PORT']} tls"
        assert old in text, old
        text = text.replace(old, f"imap localhost:{env[side + '_IMAP_PORT']}"
                            " plain")
    with open(path, "w") as f:
        f.write(text)
    return Imapmerge(service_conf(path), os.path.join(scratch, "plain-upstream.log"),
                     ports["IMAPMERGE_IMAP_PORT"],
                     ports["IMAPMERGE_IMAPS_PORT"])


def place(tbdir, proxies, dovecot, others):
    """The cores Dovecot's processes may run on, and those of this client
    and the proxies (Dovecot's processes started later inherit its
    master's)."""
    for side in ("legacy", "new"):
        for pid in tb.dovecot_pids(tbdir, side):
            try:
                os.sched_setaffinity(pid, dovecot)
            except ProcessLookupError:
                pass            # ended meanwhile
    for pid in [0] + proxies:
        os.sched_setaffinity(pid, others)


def apart(tbdir, ca, routes, proxies):
    """Bulk and APPEND rounds with Dovecot on a core of its own; nothing
    where there are fewer than two."""
    figures = {}
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return figures
    place(tbdir, proxies, {cpus[0]}, {cpus[1]})
    try:
        for r in range(ROUNDS):
            turn = ["direct", "imapmerge"][r % 2:] + \
                ["direct", "imapmerge"][:r % 2]
            for name in turn:
                figures.setdefault(f"apart_bulk_mbps_{name}", []).append(
                    bulk(ca, routes[name]))
            for name in turn:
                figures.setdefault(f"apart_append_mbps_{name}", []).append(
                    appends(ca, routes[name], "Drafts", routes["direct"]))
    finally:
        place(tbdir, proxies, set(cpus), set(cpus))
    return figures


def paired(figures, a, b, op):
    """The median over the rounds of op(a's figure, b's figure)."""
    return statistics.median(op(x, y) for x, y in
                             zip(figures[a], figures[b], strict=True))


def ratios(figures):
    """Every ratio (and the added NOOP latency) pair by pair."""
    out = {}
    for name, a, b, op in (
            ("bulk_vs_direct", "bulk_mbps_imapmerge", "bulk_mbps_direct",
             operator.truediv),
            ("bulk_vs_nginx", "bulk_mbps_imapmerge", "bulk_mbps_nginx",
             operator.truediv),
            ("bulk_plain_vs_nginx", "bulk_mbps_imapmerge_plain",
             "bulk_mbps_nginx", operator.truediv),
            ("noop_added_p50_us", "noop_p50_us_imapmerge",
             "noop_p50_us_direct", operator.sub),
            ("noop_busy_added_p50_us", "noop_busy_p50_us_imapmerge",
             "noop_busy_p50_us_direct", operator.sub),
            ("append_vs_direct", "append_mbps_imapmerge",
             "append_mbps_direct", operator.truediv),
            ("apart_bulk_vs_direct", "apart_bulk_mbps_imapmerge",
             "apart_bulk_mbps_direct", operator.truediv),
            ("apart_append_vs_direct", "apart_append_mbps_imapmerge",
             "apart_append_mbps_direct", operator.truediv)):
        if a in figures and b in figures:
            out[name] = paired(figures, a, b, op)
    return out


def main():
    if not NginxMail.available():
        print("# nginx's mail module is missing: tests/deps bench",
              file=sys.stderr)
        return 1
    scratch = tempfile.mkdtemp(prefix="imapmerge-bench-")
    env = tb.up(scratch, ttl=1800)
    ca = env["TESTBED_CA"]
    im = im_plain = ngx = None
    out = {}
    try:
        tb.adduser(scratch, USER, PASSWORD)
        seed_bulk(scratch, MESSAGES)
        nginx_port, auth_port = tb.free_ports(2)
        ngx = NginxMail(scratch, scratch, nginx_port,
                        int(env["NEW_IMAP_PORT"]), auth_port).start()
        im = Imapmerge(service_conf(env["IMAPMERGE_CONF"]),
                       os.path.join(scratch, "imapmerge.log"),
                       env["IMAPMERGE_IMAP_PORT"],
                       env["IMAPMERGE_IMAPS_PORT"]).start()
        im_plain = plain_upstream(scratch, env).start()
        routes = {"direct": env["NEW_IMAPS_PORT"], "nginx": nginx_port,
                  "imapmerge": env["IMAPMERGE_IMAPS_PORT"],
                  "imapmerge_plain": im_plain.imaps_port}
        # Dovecot indexes and caches, imapmerge builds its view.
        for port in routes.values():
            bulk(ca, port)
        figures = {}
        order = list(routes)
        for r in range(ROUNDS):
            # Each round starts with another route: none is always first.
            turn = order[r % len(order):] + order[:r % len(order)]
            for name in turn:
                figures.setdefault(f"bulk_mbps_{name}", []).append(
                    bulk(ca, routes[name]))
            for name in turn:
                busy, quiet = noops(ca, routes[name])
                for kind, (p50, p99) in (("busy_", busy), ("", quiet)):
                    figures.setdefault(f"noop_{kind}p50_us_{name}",
                                       []).append(p50)
                    figures.setdefault(f"noop_{kind}p99_us_{name}",
                                       []).append(p99)
            for name in [n for n in turn if n in ("direct", "imapmerge")]:
                figures.setdefault(f"append_mbps_{name}", []).append(
                    appends(ca, routes[name], "Drafts", routes["direct"]))
        figures.update(apart(scratch, ca, routes, [im.proc.pid]))
        out = {k: statistics.median(v) for k, v in figures.items()}
        out.update(ratios(figures))
    finally:
        for proc in (im, im_plain):
            if proc is not None:
                proc.stop()
        if ngx is not None:
            ngx.stop()
        tb.down(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    for k, v in out.items():
        unit = "MB/s" if "mbps" in k else "us" if "_us" in k else "x"
        print(f"{k} {v:.4f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
