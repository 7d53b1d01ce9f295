#!/usr/bin/python3
"""Merged-mailbox benchmarks (make bench), against the real test bed.

A merged INBOX of 50,000 legacy + 50,000 new messages, 25,000 of them
paired (75,000 in the merged view), and a plain Dovecot INBOX of 100,000
messages for the FLAGS comparison.  Prints `name value unit` lines:

  cold_select_s            first SELECT through imapmerge (empty state)
  direct_identity_s        the identity headers fetched from both servers
                           directly, in parallel (what a cold SELECT must do)
  cold_select_ratio        cold_select_s / direct_identity_s   (target <= 1.5),
                           pair by pair: each cold SELECT against the direct
                           fetch made just before it
  warm_select_s            SELECT again, nothing changed, new session
  direct_select_flags_s    SELECT + UID FETCH 1:* (FLAGS) on the larger server
  warm_select_ratio        warm_select_s / direct_select_flags_s (target <= 2),
                           pair by pair: each warm SELECT against the direct
                           one made just before it
  merged_flags_fetch_s     UID FETCH 1:* (UID FLAGS) through imapmerge (75,000)
  direct_flags_fetch_s     the same directly on a 100,000-message Dovecot
  flags_fetch_ratio        merged / direct                      (target <= 1)
  view_bytes_per_message   growth of imapmerge's resident memory per merged
                           message while the folder is selected (target <= 100)
  merged_search_s          UID SEARCH SUBJECT through imapmerge on a merged
                           INBOX of 100,000 (60,000 + 60,000, 20,000 paired),
                           second run (Dovecot has cached the header)
  direct_search_s          the same search on both servers at once, directly
  search_ratio             merged / direct

Raw sockets, not imaplib: the client must cost far less than the servers.
The SELECT and direct identity figures, the merged FLAGS fetch and the
memory per message are medians of SAMPLES tries; the searches and the
direct FLAGS fetch are timed once.  A cold SELECT needs an empty state and
a fresh process: imapmerge is stopped and its state directory removed
before each (the merged FLAGS fetch and the memory per message are
measured in the same session as it).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import benchenv  # noqa: E402,F401  (paths to the test bed and helpers)
import tb  # noqa: E402
from proxy import Imapmerge  # noqa: E402
from rawimap import Raw  # noqa: E402

LEGACY, NEW, PAIRED, BIG = 50000, 50000, 25000, 100000
# The search mailbox: 60,000 + 60,000 with 20,000 paired, 100,000 merged.
S_SIDE, S_PAIRED = 60000, 20000
SEARCH = 'SUBJECT "Message 4242"'
# The short timings (direct identity, warm SELECT, direct SELECT + FLAGS)
# are medians of this many tries: one try of 25-40 ms is mostly noise.
SAMPLES = 5
IDENTITY = ("UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
            "(MESSAGE-ID X-MICROSOFT-ORIGINAL-MESSAGE-ID "
            "X-MS-EXCHANGE-PARENT-MESSAGE-ID DATE FROM TO SUBJECT)]")


def seed_fast(tbdir, user, side, count, offset, when0):
    """Maildir files straight into cur/, with Message-IDs shared between
    sides for the paired range."""
    d = tb.folder_dir(tbdir, side, user, "INBOX")
    uid, gid = tb.dovecot_ids()
    cur = os.path.join(d, "cur")
    for i in range(offset, offset + count):
        when = when0 + i * 10
        name = f"{when}.M{i}P1.bench:2,{'S' if i % 3 == 0 else ''}"
        body = (f"Message-ID: <bench-{i}@example.ac.jp>\r\n"
                f"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                f"From: Sender {i % 17} <s{i % 17}@example.ac.jp>\r\n"
                f"To: {user}@example.ac.jp\r\nSubject: Message {i}\r\n"
                f"\r\nBody of {i}.\r\n").encode()
        p = os.path.join(cur, name)
        with open(p, "wb") as f:
            f.write(body)
        os.utime(p, (when, when))
    subprocess.run(["chown", "-R", f"{uid}:{gid}", d], check=True)


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def medians(samples, ratio, num, den):
    """The median of every figure's tries, and ratio: the median of num's
    tries each divided by den's of the same try (pair by pair)."""
    out = {k: statistics.median(v) for k, v in samples.items()}
    out[ratio] = statistics.median(
        x / y for x, y in zip(samples[num], samples[den], strict=True))
    return out


def main():
    scratch = tempfile.mkdtemp(prefix="imapmerge-bench-")
    env = tb.up(scratch, ttl=900)
    ca = env["TESTBED_CA"]
    out = {}
    im = None
    try:
        tb.adduser(scratch, "mb", "secret")
        tb.adduser(scratch, "big", "secret")
        # legacy 0..50k, new 25k..75k: 25k paired.
        seed_fast(scratch, "mb", "legacy", LEGACY, 0, 1600000000)
        seed_fast(scratch, "mb", "new", NEW, LEGACY - PAIRED, 1600000000)
        seed_fast(scratch, "big", "new", BIG, 0, 1600000000)
        tb.adduser(scratch, "srch", "secret")
        seed_fast(scratch, "srch", "legacy", S_SIDE, 0, 1600000000)
        seed_fast(scratch, "srch", "new", S_SIDE, S_SIDE - S_PAIRED,
                  1600000000)
        # Let Dovecot index everything before anything is timed.
        for side, user in (("legacy", "mb"), ("new", "mb"), ("new", "big"),
                           ("legacy", "srch"), ("new", "srch")):
            c = Raw(ca, env[f"{side.upper()}_IMAPS_PORT"], user, "secret")
            c.cmd("SELECT INBOX")
            c.cmd("UID FETCH 1:* (" + IDENTITY + ")")
            c.close()

        def direct_identity(side):
            c = Raw(ca, env[f"{side.upper()}_IMAPS_PORT"], "mb", "secret")
            c.cmd("EXAMINE INBOX")
            c.cmd("UID FETCH 1:* (" + IDENTITY + ")")
            c.close()

        def both_identities():
            threads = [threading.Thread(target=direct_identity, args=(s,))
                       for s in ("legacy", "new")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        # Once untimed: what follows finds Dovecot as the cold SELECTs will.
        both_identities()

        # SEARCH SUBJECT on both servers at once, as imapmerge must.
        def direct_search(side):
            c = Raw(ca, env[f"{side.upper()}_IMAPS_PORT"], "srch", "secret")
            c.cmd("EXAMINE INBOX")
            c.cmd("UID SEARCH " + SEARCH)       # Dovecot caches the header
            t = timed(lambda: c.cmd("UID SEARCH " + SEARCH))
            c.close()
            return t
        times = []
        threads = [threading.Thread(target=lambda s=s: times.append(
            direct_search(s))) for s in ("legacy", "new")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out["direct_search_s"] = max(times)

        def direct_select_flags():
            c = Raw(ca, env["NEW_IMAPS_PORT"], "mb", "secret")
            c.cmd("SELECT INBOX")
            c.cmd("UID FETCH 1:* (FLAGS)")
            c.close()

        def direct_flags():
            c = Raw(ca, env["NEW_IMAPS_PORT"], "big", "secret")
            c.cmd("EXAMINE INBOX")
            t = timed(lambda: c.cmd("UID FETCH 1:* (UID FLAGS)"))
            c.close()
            return t
        out["direct_flags_fetch_s"] = direct_flags()

        log = os.path.join(scratch, "imapmerge.log")
        im = Imapmerge(env["IMAPMERGE_CONF"], log, env["IMAPMERGE_IMAP_PORT"],
                       env["IMAPMERGE_IMAPS_PORT"])
        state = os.path.join(scratch, "imapmerge-state")
        cold = {}
        for _ in range(SAMPLES):
            cold.setdefault("direct_identity_s", []).append(
                timed(both_identities))
            im.stop()
            shutil.rmtree(state, ignore_errors=True)    # made again at start
            im.start()
            c = Raw(ca, env["IMAPMERGE_IMAPS_PORT"], "mb", "secret")
            base = im.rss_kb()
            cold.setdefault("cold_select_s", []).append(
                timed(lambda: c.cmd("SELECT INBOX")))
            grown = im.rss_kb() - base
            cold.setdefault("view_bytes_per_message", []).append(
                grown * 1024.0 / (LEGACY + NEW - PAIRED))
            cold.setdefault("merged_flags_fetch_s", []).append(
                timed(lambda: c.cmd("UID FETCH 1:* (UID FLAGS)")))
            c.close()
        if not os.path.isdir(state):    # else no SELECT above was cold
            raise RuntimeError(f"no state directory at {state}")
        out.update(medians(cold, "cold_select_ratio", "cold_select_s",
                           "direct_identity_s"))
        warm = {}
        for _ in range(SAMPLES):
            warm.setdefault("direct_select_flags_s", []).append(
                timed(direct_select_flags))
            c = Raw(ca, env["IMAPMERGE_IMAPS_PORT"], "mb", "secret")
            warm.setdefault("warm_select_s", []).append(
                timed(lambda: c.cmd("SELECT INBOX")))
            c.close()
        out.update(medians(warm, "warm_select_ratio", "warm_select_s",
                           "direct_select_flags_s"))
        c = Raw(ca, env["IMAPMERGE_IMAPS_PORT"], "srch", "secret")
        c.cmd("SELECT INBOX")
        c.cmd("UID SEARCH " + SEARCH)
        out["merged_search_s"] = timed(lambda: c.cmd("UID SEARCH " + SEARCH))
        c.close()
        out["flags_fetch_ratio"] = out["merged_flags_fetch_s"] / \
            out["direct_flags_fetch_s"]
        out["search_ratio"] = out["merged_search_s"] / out["direct_search_s"]
    finally:
        if im is not None:
            im.stop()
        tb.down(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
    units = {"ratio": "x", "_s": "s", "message": "bytes"}
    for k, v in out.items():
        unit = next(u for suffix, u in units.items() if k.endswith(suffix))
        print(f"{k} {v:.4f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
