"""The status endpoint (status-listen): Prometheus metrics over HTTP.

The page is parsed line by line into (name, labels) -> value, and every
series is looked up by its name and labels; # HELP and # TYPE lines are
checked for every metric family."""

import http.client
import os
import re
import socket
import time

import pytest

import tb
from proxy import Imapmerge, variant_conf
from test_mailbox import login

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')

FAMILIES = {
    "imapmerge_sessions": "gauge",
    "imapmerge_users": "gauge",
    "imapmerge_backend_connections": "gauge",
    "imapmerge_backend_throttled_total": "counter",
    "imapmerge_backend_failures_total": "counter",
    "imapmerge_logins_total": "counter",
    "imapmerge_uptime_seconds": "gauge",
    "imapmerge_build_info": "gauge",
}


def parse(text):
    """{(name, frozenset(labels)): value}, and {family: type}."""
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
            continue
        assert line and not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        pairs = frozenset(LABEL.findall(labels or ""))
        if labels:
            assert ",".join(f'{k}="{v}"' for k, v in
                            LABEL.findall(labels)) == labels, line
        key = (name, pairs)
        assert key not in samples, f"twice: {line}"
        samples[key] = float(value)
        assert name in types, f"{name} before its # TYPE"
    assert helps == set(types), (helps, types)
    return samples, types


def get(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no {name}{labels}"
    return samples[key]


class Status:
    def __init__(self, port):
        self.port = port

    def request(self, method, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def scrape(self):
        r, body = self.request("GET", "/metrics")
        assert r.status == 200, (r.status, body)
        assert r.getheader("Content-Type") == \
            "text/plain; version=0.0.4; charset=utf-8"
        samples, types = parse(body.decode())
        for family, kind in FAMILIES.items():
            assert types.get(family) == kind, family
        return samples


@pytest.fixture(scope="module")
def status(testbed):
    (port,) = tb.free_ports(1)
    conf, imap, imaps = variant_conf(
        testbed, "status.conf",
        replace=[("poll-interval 2s",
                  f"poll-interval 2s\nstatus-listen 127.0.0.1:{port}")])
    log = os.path.join(testbed.dir, "imapmerge-status.log")
    im = Imapmerge(conf, log, imap, imaps).start()
    yield im, Status(port)
    im.stop()


def until(status, check, timeout=10.0):
    """Scrapes until check(samples) holds; returns the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        samples = status.scrape()
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def test_metrics_follow_sessions(testbed, status, user):
    im, st = status
    before = st.scrape()
    imap0 = get(before, "imapmerge_sessions", protocol="imap")
    up0 = {side: get(before, "imapmerge_backend_connections", backend=side,
                     state="up") for side in ("legacy", "new")}
    ok0 = get(before, "imapmerge_logins_total", result="ok")
    assert get(before, "imapmerge_sessions", protocol="submission") == 0
    assert get(before, "imapmerge_build_info", version="0.1") == 1
    assert get(before, "imapmerge_uptime_seconds") >= 0
    for side in ("legacy", "new"):
        assert get(before, "imapmerge_backend_throttled_total",
                   backend=side) >= 0
        assert get(before, "imapmerge_backend_failures_total",
                   backend=side) >= 0
        assert get(before, "imapmerge_backend_connections", backend=side,
                   state="down") >= 0

    c1 = login(testbed, im, user)
    c2 = login(testbed, im, user)
    during = st.scrape()
    assert get(during, "imapmerge_sessions", protocol="imap") == imap0 + 2
    for side in ("legacy", "new"):
        assert get(during, "imapmerge_backend_connections", backend=side,
                   state="up") == up0[side] + 2
    assert get(during, "imapmerge_logins_total", result="ok") == ok0 + 2
    assert get(during, "imapmerge_users") >= 1

    c1.logout()
    c2.logout()
    after = until(st, lambda s: get(s, "imapmerge_sessions",
                                    protocol="imap") == imap0)
    assert get(after, "imapmerge_sessions", protocol="imap") == imap0
    for side in ("legacy", "new"):
        assert get(after, "imapmerge_backend_connections", backend=side,
                   state="up") == up0[side]


def test_failed_login_counted(testbed, status, user):
    im, st = status
    failed0 = get(st.scrape(), "imapmerge_logins_total", result="failed")
    import imaplib
    c = imaplib.IMAP4_SSL("localhost", im.imaps_port,
                          ssl_context=testbed.ctx(), timeout=30)
    with pytest.raises(imaplib.IMAP4.error):
        c.login(user[0], "wrong-" + user[1])
    c.logout()
    after = st.scrape()
    assert get(after, "imapmerge_logins_total", result="failed") == \
        failed0 + 1


def test_other_paths_and_methods(status):
    _, st = status
    r, _ = st.request("GET", "/")
    assert r.status == 404
    r, _ = st.request("GET", "/metricsx")
    assert r.status == 404
    r, _ = st.request("POST", "/metrics")
    assert r.status == 405
    r, body = st.request("HEAD", "/metrics")
    assert r.status == 200 and body == b""
    assert int(r.getheader("Content-Length")) > 0


def test_oversized_request_refused(status):
    """Headers past the 4 kB limit, and a request with a body, are refused
    without a metrics page; the endpoint answers normally afterwards."""
    _, st = status
    for req in (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                b"a" * 200000 + b"\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 100000\r\n\r\n" + b"b" * 100000):
        s = socket.create_connection(("127.0.0.1", st.port), timeout=10)
        try:
            s.sendall(req)
        except OSError:
            pass                    # closed while we were still sending
        answer = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
        s.close()
        status_line = answer.split(b"\r\n", 1)[0]
        assert b" 200 " not in status_line, status_line
        assert b"imapmerge_sessions" not in answer
    r, body = st.request("GET", "/metrics")
    assert r.status == 200 and b"imapmerge_sessions" in body
