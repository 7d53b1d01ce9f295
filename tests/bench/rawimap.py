"""A raw-socket IMAP client for the benchmarks: no imaplib, no parsing of
what it does not need, so that the client costs far less than the servers.
"""

import socket
import ssl
import time


class Raw:
    def __init__(self, ca, port, user, password, host="localhost",
                 timeout=600):
        ctx = ssl.create_default_context(cafile=ca)
        s = socket.create_connection((host, int(port)), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = ctx.wrap_socket(s, server_hostname=host)
        self.n = 0
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self._line()
        self.cmd(f"LOGIN {user} {password}")

    def _line(self):
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = self.s.recv(4096)
            if not chunk:
                raise RuntimeError("closed")
            data += chunk
        return data

    def cmd(self, text, payload=None):
        """Sends TAG text (and a literal+ payload after it, if given);
        returns the number of bytes received up to the tagged OK."""
        self.n += 1
        tag = f"B{self.n}".encode()
        if payload is None:
            self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text.encode() +
                           f" {{{len(payload)}+}}\r\n".encode())
            self.s.sendall(payload)
            self.s.sendall(b"\r\n")
        ok, no, bad = tag + b" OK", tag + b" NO", tag + b" BAD"
        tail = b"\r\n"
        total = 0
        while True:
            n = self.s.recv_into(self.buf)
            if n == 0:
                raise RuntimeError("closed")
            total += n
            tail = tail[-256:] + bytes(self.view[max(0, n - 4096):n])
            if not tail.endswith(b"\r\n"):
                continue
            last = tail[tail.rfind(b"\r\n", 0, len(tail) - 2) + 2:]
            if last.startswith(ok):
                return total
            if last.startswith(no) or last.startswith(bad):
                raise RuntimeError(last.decode(errors="replace"))

    def round_trips(self, text, count):
        """count sequential commands; their round-trip times in µs."""
        out = []
        for _ in range(count):
            t0 = time.perf_counter_ns()
            self.cmd(text)
            out.append((time.perf_counter_ns() - t0) / 1000.0)
        return out

    def close(self):
        try:
            self.s.sendall(b"Z LOGOUT\r\n")
        except OSError:
            pass
        self.s.close()
