"""A small scripted IMAP server for what real servers do not do on demand:
throttle like Office 365, talk garbage, hang, or announce absurd literals.

    srv = FakeImap("throttle", backoff_ms=400).start()
    ... imapmerge configured with `imap localhost:<srv.port> plain` ...
    srv.stop()

Plain TCP on loopback, or implicit TLS (tls=(cert, key)); every
connection in its own thread; the server stops by itself after `ttl`
seconds.
"""

import os
import re
import socket
import ssl
import threading
import time

LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
CAPS = b"IMAP4rev1 LITERAL+ IDLE UIDPLUS MOVE UNSELECT"


class BioConn:
    """TLS through memory BIOs, so that what leaves is chosen: the
    handshake's last flight is held back and goes out in one send() with
    the first bytes written (a TLS 1.2 server's Finished with its
    greeting, a client's Finished with its first command), as they often
    arrive from a busy peer.  A client when server_hostname is given."""

    def __init__(self, sock, ctx, server_hostname=None):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out,
                                server_side=server_hostname is None,
                                server_hostname=server_hostname)
        while True:
            try:
                self.obj.do_handshake()
                return
            except ssl.SSLWantReadError:
                self.flush()
                if not self.fill():
                    raise OSError("closed in the handshake")

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def fill(self):
        data = self.sock.recv(65536)
        self.inc.write(data)
        return bool(data)

    def sendall(self, data):
        self.obj.write(data)
        self.flush()

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                self.flush()
                if not self.fill():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def settimeout(self, t):
        self.sock.settimeout(t)

    def shutdown(self, how):
        self.sock.shutdown(how)

    def close(self):
        self.sock.close()


class FakeImap:
    def __init__(self, mode, backoff_ms=400, ttl=120, tls=None,
                 tls12_coalesced=False):
        self.mode = mode
        self.tls = None
        self.tls12_coalesced = tls12_coalesced
        if tls:                         # (certfile, keyfile): implicit TLS
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
            if tls12_coalesced:
                self.tls.maximum_version = ssl.TLSVersion.TLSv1_2
        self.backoff_ms = backoff_ms
        self.ttl = ttl
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.seen = set()               # command texts throttled once
        self.events = []                # (time, "throttled"|"cmd", text)
        self.folders = [b"INBOX"]
        self.stopping = False
        self.conns = []

    def start(self):
        threading.Thread(target=self.accept_loop, daemon=True).start()
        threading.Timer(self.ttl, self.stop).start()
        return self

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self.conns):
            try:
                c.close()
            except OSError:
                pass

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def log(self, kind, text):
        with self.lock:
            self.events.append((time.monotonic(), kind, text))

    # ------------------------------------------------------------- modes

    def serve(self, c):
        try:
            if self.tls and self.tls12_coalesced:
                c = BioConn(c, self.tls)
            elif self.tls:
                c = self.tls.wrap_socket(c, server_side=True)
            getattr(self, "mode_" + self.mode.replace("-", "_"))(c)
        except (OSError, ValueError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def mode_silent(self, c):
        c.settimeout(self.ttl)
        while c.recv(65536):
            pass

    def mode_close_at_greeting(self, c):
        c.sendall(b"* OK [CAPAB")
        c.shutdown(socket.SHUT_RDWR)

    def mode_garbage(self, c):
        rnd = os.urandom(1 << 20).replace(b"\n", b"x")
        c.sendall(b"* OK ready\r\n")
        self.read_command(c)
        c.sendall(rnd)
        self.mode_silent(c)

    def mode_huge_literal(self, c):
        c.sendall(b"* OK [CAPABILITY " + CAPS + b"] ready\r\n")
        self.read_command(c)
        c.sendall(b"* CAPABILITY {2147483648}\r\n")
        chunk = b"x" * 65536
        for _ in range(64):             # 4 MB, then silence
            c.sendall(chunk)
        self.mode_silent(c)

    def mode_throttle(self, c):
        """A working server that throttles every command text once."""
        c.sendall(b"* OK [CAPABILITY " + CAPS + b"] fake ready\r\n")
        selected = False
        while True:
            tag, text = self.read_command(c)
            if tag is None:
                return
            verb = text.split(b" ", 1)[0].upper()
            if verb == b"UID":
                verb = b"UID " + text.split(b" ")[1].upper()
            key = re.sub(rb"\{\d+\+?\}\r\n", b"", text)
            if verb not in (b"LOGIN", b"CAPABILITY", b"LOGOUT", b"DONE"):
                with self.lock:
                    first = key not in self.seen
                    self.seen.add(key)
                if first:
                    self.log("throttled", text)
                    c.sendall(tag + b" BAD Request is throttled. Suggested "
                              b"Backoff Time: %d milliseconds\r\n"
                              % self.backoff_ms)
                    continue
            self.log("cmd", text)
            out = self.answer(verb, text, selected)
            if verb in (b"SELECT", b"EXAMINE"):
                selected = True
            if verb == b"IDLE":
                c.sendall(b"+ idling\r\n")
                line = self.read_line(c)
                if line is None:
                    return
            c.sendall(out + tag + b" OK done\r\n")
            if verb == b"LOGOUT":
                return

    def answer(self, verb, text, selected):
        if verb == b"CAPABILITY":
            return b"* CAPABILITY " + CAPS + b"\r\n"
        if verb == b"LOGOUT":
            return b"* BYE bye\r\n"
        if verb in (b"LIST", b"LSUB"):
            return b"".join(b'* %s (\\HasNoChildren) "/" "%s"\r\n'
                            % (verb, f) for f in self.folders)
        if verb == b"CREATE":
            name = text.split(b" ", 1)[1].strip().strip(b'"')
            with self.lock:
                self.folders.append(name)
            return b""
        if verb in (b"SELECT", b"EXAMINE"):
            return (b"* 0 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen)\r\n"
                    b"* OK [PERMANENTFLAGS (\\Seen \\*)] ok\r\n"
                    b"* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\n")
        if verb == b"STATUS":
            name = text.split(b" ")[1]
            return b"* STATUS %s (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 7)\r\n" \
                % name
        if verb in (b"SEARCH", b"UID SEARCH"):
            return b"* SEARCH\r\n"
        return b""

    # ------------------------------------------------------------ reading

    def read_line(self, c):
        buf = b""
        while not buf.endswith(b"\r\n"):
            ch = c.recv(1)
            if not ch:
                return None
            buf += ch
            if len(buf) > 100000:
                return None
        return buf

    def read_command(self, c):
        """(tag, text without tag and CRLF), literals inlined."""
        text = b""
        while True:
            line = self.read_line(c)
            if line is None:
                return None, None
            m = LITERAL.search(line)
            if not m:
                text += line[:-2]
                break
            text += line
            if not line.endswith(b"+}\r\n"):
                c.sendall(b"+ go on\r\n")
            n = int(m.group(1))
            data = b""
            while len(data) < n:
                more = c.recv(n - len(data))
                if not more:
                    return None, None
                data += more
            text += data
        tag, _, rest = text.partition(b" ")
        return tag, rest
