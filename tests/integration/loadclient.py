"""Many IMAP sessions at once from one process (asyncio): each logs in over
TLS, selects a folder and IDLEs, and stays there until told to finish.
Used by the load test and the connection-scale benchmark.

Every wait has a deadline; a session that fails keeps its reason, so a
test can say which step failed and how often.
"""

import asyncio
import resource
import ssl
import time


def raise_fd_limit(need):
    """Raises this process's open-file limit to at least need (up to the
    hard limit); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        soft = min(need, hard) if hard != resource.RLIM_INFINITY else need
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


class Session:
    def __init__(self, n, user, password):
        self.n = n
        self.user = user
        self.password = password
        self.reader = self.writer = None
        self.error = None
        self.exists = None
        self.login_s = None
        self.unsolicited = []

    async def _tagged(self, tag, timeout):
        """Lines up to the tagged answer; returns (status line, lines)."""
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {tag.decode()}")
            line = await asyncio.wait_for(self.reader.readline(), left)
            if not line:
                raise ConnectionError("connection closed")
            if line.startswith(tag + b" "):
                return line, lines
            lines.append(line)

    async def _command(self, tag, text, timeout):
        self.writer.write(tag + b" " + text + b"\r\n")
        status, lines = await self._tagged(tag, timeout)
        if not status.startswith(tag + b" OK"):
            raise RuntimeError(status.decode(errors="replace").strip())
        return lines

    async def open(self, host, port, ctx, folder="INBOX", timeout=60):
        t0 = time.monotonic()
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx,
                                    server_hostname=host), timeout)
        greeting = await asyncio.wait_for(self.reader.readline(), timeout)
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"greeting {greeting!r}")
        await self._command(b"a", b'LOGIN "%s" "%s"' % (
            self.user.encode(), self.password.encode()), timeout)
        self.login_s = time.monotonic() - t0
        lines = await self._command(b"b", b"SELECT " + folder.encode(),
                                    timeout)
        for line in lines:
            if line.endswith(b" EXISTS\r\n"):
                self.exists = int(line.split()[1])
        self.writer.write(b"c IDLE\r\n")
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line.startswith(b"+"):
            raise RuntimeError(f"IDLE answered {line!r}")

    async def finish(self, timeout=60):
        """DONE, then LOGOUT: proves the session was alive all along."""
        self.writer.write(b"DONE\r\n")
        status, lines = await self._tagged(b"c", timeout)
        self.unsolicited = lines
        if not status.startswith(b"c OK"):
            raise RuntimeError(status.decode(errors="replace").strip())
        await self._command(b"d", b"LOGOUT", timeout)
        self.writer.close()

    def abort(self):
        if self.writer is not None:
            self.writer.close()


class Load:
    """n sessions spread over users (a list of (name, password)), opened
    with at most `parallel` logins in flight."""

    def __init__(self, host, port, cafile, users, n, parallel=32,
                 timeout=120):
        self.host, self.port, self.timeout = host, port, timeout
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.sessions = [Session(i, *users[i % len(users)])
                         for i in range(n)]
        self.parallel = parallel
        self.loop = asyncio.new_event_loop()

    async def _open_all(self):
        gate = asyncio.Semaphore(self.parallel)

        async def one(s):
            async with gate:
                try:
                    await s.open(self.host, self.port, self.ctx,
                                 timeout=self.timeout)
                except Exception as e:          # noqa: BLE001 - reported
                    s.error = f"open: {type(e).__name__}: {e}"
                    s.abort()
        await asyncio.gather(*(one(s) for s in self.sessions))

    async def _finish_all(self):
        gate = asyncio.Semaphore(self.parallel * 4)

        async def one(s):
            if s.error:
                return
            async with gate:
                try:
                    await s.finish(self.timeout)
                except Exception as e:          # noqa: BLE001 - reported
                    s.error = f"finish: {type(e).__name__}: {e}"
                    s.abort()
        await asyncio.gather(*(one(s) for s in self.sessions))

    def open_all(self):
        t0 = time.monotonic()
        self.loop.run_until_complete(self._open_all())
        return time.monotonic() - t0

    def hold(self, seconds):
        """Keeps the loop (and so the sockets) running for a while."""
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def finish_all(self):
        self.loop.run_until_complete(self._finish_all())

    def close(self):
        for s in self.sessions:
            s.abort()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def errors(self):
        return [(s.n, s.user, s.error) for s in self.sessions if s.error]
