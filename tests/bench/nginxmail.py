"""nginx's mail module as a pass-through IMAP proxy in front of a test-bed
Dovecot: the best-known mail proxy, for the benchmarks to compare with.

nginx asks an HTTP service where to send each login (`auth_http`); here
that is a tiny server in this process that always answers with the
Dovecot's plain IMAP port.  nginx's mail proxy cannot speak TLS to its
upstream, so its server leg is plaintext while imapmerge's is TLS: the
comparison favours nginx.  Clients reach it over TLS (implicit, port
given), with the test bed's certificate for "localhost".
"""

import http.server
import os
import shutil
import signal
import subprocess
import threading
import time

MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"

CONF = """\
load_module {module};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 40000;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{
    worker_connections 20000;
}}
mail {{
    server_name localhost;
    auth_http 127.0.0.1:{auth}/auth;
    proxy_pass_error_message on;
    imap_capabilities "IMAP4rev1" "LITERAL+" "SASL-IR" "ID" "ENABLE"
                      "IDLE" "NAMESPACE" "UIDPLUS" "MOVE" "UNSELECT";
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen 127.0.0.1:{port} ssl;
        protocol imap;
    }}
}}
"""


class _Auth(http.server.BaseHTTPRequestHandler):
    upstream_port = 0

    def do_GET(self):
        self.send_response(200)
        self.send_header("Auth-Status", "OK")
        self.send_header("Auth-Server", "127.0.0.1")
        self.send_header("Auth-Port", str(self.upstream_port))
        self.end_headers()

    def log_message(self, *args):
        pass


class NginxMail:
    def __init__(self, workdir, tbdir, port, upstream_port, auth_port):
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        handler = type("Auth", (_Auth,), {"upstream_port": upstream_port})
        self.auth = http.server.ThreadingHTTPServer(("127.0.0.1", auth_port),
                                                    handler)
        self.thread = threading.Thread(target=self.auth.serve_forever,
                                       daemon=True)
        self.port = port
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(CONF.format(
                module=MODULE, d=self.dir, auth=auth_port, port=port,
                cert=os.path.join(tbdir, "ca", "imapmerge.crt"),
                key=os.path.join(tbdir, "ca", "imapmerge.key")))
        self.proc = None

    @staticmethod
    def available():
        return shutil.which("nginx") is not None and os.path.exists(MODULE)

    def start(self):
        self.thread.start()
        self.proc = subprocess.Popen(
            ["nginx", "-p", self.dir, "-c",
             os.path.join(self.dir, "nginx.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "stderr.log"), "wb"))
        import socket
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("nginx did not start: " + open(os.path.join(
            self.dir, "nginx-error.log")).read()[-2000:])

    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.auth.shutdown()
        self.auth.server_close()
