"""N checking sessions of one account at once, and their report."""

import asyncio
import collections
import os
import random
import ssl
import sys
import time
import traceback

from .session import Session

EXAMPLES = 3            # kept per kind


class Report:
    def __init__(self, label, seed, sessions, seconds, user, replay=""):
        self.label, self.seed = label, seed
        self.sessions, self.seconds, self.user = sessions, seconds, user
        self.replay = replay
        self.counts = {"error": collections.Counter(),
                       "inconsistency": collections.Counter()}
        self.examples = collections.defaultdict(list)
        self.commands = self.checkpoints = self.appended = 0
        self.expungeissued = 0
        self.unavailable = 0
        self.elapsed = 0.0

    def add(self, cls, kind, session, cmd, detail):
        self.counts[cls][kind] += 1
        ex = self.examples[(cls, kind)]
        if len(ex) < EXAMPLES:
            ex.append({
                "session": session.n if session else None,
                "step": session.step if session else None,
                "command": cmd.show() if cmd is not None else None,
                "answer": cmd.answer() if cmd is not None else [],
                "detail": detail,
                "context": list(session.trace) if session else [],
            })

    @property
    def errors(self):
        return sum(self.counts["error"].values())

    @property
    def inconsistencies(self):
        return sum(self.counts["inconsistency"].values())

    @property
    def rate(self):
        return self.commands / self.elapsed if self.elapsed else 0.0

    def text(self, context=True):
        out = [f"loadcheck {self.label}: seed {self.seed}, {self.sessions} "
               f"sessions of {self.user} for {self.seconds} s",
               f"  {self.commands} commands in {self.elapsed:.1f} s "
               f"({self.rate:.1f}/s), {self.checkpoints} checkpoints, "
               f"{self.appended} own messages appended, "
               f"{self.expungeissued} NO [EXPUNGEISSUED] on others' messages"
               + (f", {self.unavailable} NO [UNAVAILABLE] on them"
                  if self.unavailable else ""),
               f"  errors {self.errors}, inconsistencies "
               f"{self.inconsistencies}"]
        for cls in ("error", "inconsistency"):
            for kind, n in self.counts[cls].most_common():
                out.append(f"  {cls} {kind!r}: {n}")
                for ex in self.examples[(cls, kind)]:
                    out.append(f"    session {ex['session']} step "
                               f"{ex['step']}: {ex['command']}")
                    for line in ex["answer"]:
                        out.append(f"      S: {line}")
                    if ex["detail"]:
                        out.append(f"      ! {ex['detail']}")
                    if context and ex["context"]:
                        out.append("      before:")
                        out += [f"        {t}" for t in ex["context"][-5:]]
        if self.replay:
            out.append(f"  replay: {self.replay}")
        return "\n".join(out)


class Run:
    """What the sessions share."""

    def __init__(self, host, port, cafile, user, password, seed, seconds,
                 report, login_parallel=16, unavailable_ok=False):
        self.host, self.port = host, int(port)
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.user, self.password = user, password
        self.seed = seed
        # Own messages are told apart by this tag: new in every run, so a
        # mailbox used before (or by the other route) does not matter.
        self.tag = f"{seed % 100000:05d}{os.urandom(2).hex()}"
        self.seconds = seconds
        self.deadline = 0.0
        self.report = report
        self.login_parallel = login_parallel
        self.login_gate = None
        # NO [UNAVAILABLE] on a command that reads others' messages is
        # fine (a server stopped on purpose during the run).
        self.unavailable_ok = unavailable_ok


def new_seed():
    return random.SystemRandom().randrange(1, 10**9)


def run_check(host, port, cafile, user, password, sessions=10, seconds=20,
              seed=None, label="", replay="", unavailable_ok=False):
    """Runs `sessions` checking sessions of user for `seconds` (then each
    checks both folders once more and logs out); returns the Report.
    The seed (printed in the report) replays each session's choices."""
    seed = new_seed() if seed is None else int(seed)
    report = Report(label or f"{host}:{port}", seed, sessions, seconds, user,
                    replay.format(seed=seed) if replay else "")
    run = Run(host, port, cafile, user, password, seed, seconds, report,
              unavailable_ok=unavailable_ok)
    print(f"loadcheck {report.label}: seed {seed}, {sessions} sessions of "
          f"{user} for {seconds} s on {host}:{port}", file=sys.stderr,
          flush=True)

    async def main():
        run.login_gate = asyncio.Semaphore(run.login_parallel)
        t0 = time.monotonic()
        run.deadline = t0 + seconds
        ss = [Session(run, i) for i in range(sessions)]

        async def one(s):
            try:
                await s.run_session()
            except Exception as e:      # noqa: BLE001 - a checker bug
                report.add("error", "checker crashed", s, None,
                           f"{type(e).__name__}: {e}\n"
                           + traceback.format_exc()[-1500:])
            finally:
                s.drop()
        await asyncio.gather(*(one(s) for s in ss))
        report.elapsed = time.monotonic() - t0

    asyncio.run(main())
    return report
