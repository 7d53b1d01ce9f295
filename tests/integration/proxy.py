"""Starting imapmerge against the test bed, and talking to it.

`Imapmerge` runs `$IMAPMERGE_BUILD/imapmerge -d -f CONF` with its log in a
file, waits until its IMAP ports answer, and stops it (SIGTERM, then
SIGKILL) at the end.  Every log it wrote is kept so that tests can scan
all of them for secrets.
"""

import os
import signal
import socket
import ssl
import subprocess
import time

BUILD = os.environ.get("IMAPMERGE_BUILD",
                       os.path.join(os.path.dirname(__file__), "..", "..", "build"))
BINARY = os.path.join(BUILD, "imapmerge")
# `make asan` builds into build/asan: memory bounds do not hold there, and
# valgrind cannot run such a binary.
SANITIZED = "asan" in os.environ.get("IMAPMERGE_BUILD", "")

ALL_LOGS = []


def wait_port(host, port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Imapmerge:
    def __init__(self, conf, log_path, imap_port, imaps_port, env=None,
                 wrap=(), start_timeout=10.0):
        self.conf = conf
        self.wrap = list(wrap)          # e.g. valgrind and its options
        self.start_timeout = start_timeout
        self.log_path = log_path
        self.imap_port = int(imap_port)
        self.imaps_port = int(imaps_port)
        self.env = env
        self.proc = None

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrap +
                                     [BINARY, "-d", "-v", "-f", self.conf],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env)
        ALL_LOGS.append(self.log_path)
        for port in (self.imap_port, self.imaps_port):
            if not wait_port("127.0.0.1", port, self.start_timeout):
                self.stop()
                raise RuntimeError(f"imapmerge did not listen on {port}:\n"
                                   + self.log())
        # The port may answer for another instance: ours must be alive.
        time.sleep(0.1)
        if not self.alive():
            raise RuntimeError("imapmerge exited:\n" + self.log())
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()
        rc, self.proc = self.proc.returncode, None
        return rc


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx


def variant_conf(testbed, name, replace=(), xoauth2=False):
    """A copy of the test bed's imapmerge config with its own listener
    ports and some text replaced; returns (path, imap_port, imaps_port)."""
    import tb
    ports = {k: testbed.env[k] for k in tb.PORT_NAMES if k in testbed.env}
    imap, imaps, sub, subs = tb.free_ports(4)
    ports["IMAPMERGE_IMAP_PORT"], ports["IMAPMERGE_IMAPS_PORT"] = imap, imaps
    ports["IMAPMERGE_SUBMISSION_PORT"] = sub
    ports["IMAPMERGE_SUBMISSIONS_PORT"] = subs
    path = tb.write_imapmerge_conf(testbed.dir, ports, name, xoauth2=xoauth2)
    with open(path) as f:
        text = f.read()
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    with open(path, "w") as f:
        f.write(text)
    return path, imap, imaps
