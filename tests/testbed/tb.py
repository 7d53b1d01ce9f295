"""The test bed: two real Dovecot servers (legacy-like and Office-365-like),
their SMTP sinks, a CA, users, seeding and a migration copier.

Everything lives under one scratch directory DIR, listens on loopback only,
runs as the `dovecot` user where Dovecot insists, and is stopped by `down`
or, at the latest, by a watchdog after the TTL.  See docs/testbed.md.
"""

import base64
import email.utils
import hashlib
import hmac
import imaplib
import json
import os
import pwd
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
USERS = {"alice": "secret", "bob": "secret"}
# Spare users made at start, handed out to tests for fresh mailboxes:
# Dovecot re-reads passwd files at most once a second, so a user added
# later may be unknown for up to a second.
POOL = 48

# Legacy names of the role folders, and the new server's names for them.
LEGACY_ROLE_FOLDERS = ["送信済み", "ごみ箱", "迷惑メール", "Drafts"]
NEW_ROLE_FOLDERS = {"Sent Items": "\\Sent", "Deleted Items": "\\Trash",
                    "Junk Email": "\\Junk", "Drafts": "\\Drafts",
                    "Archive": "\\Archive"}
LEGACY_TO_NEW = {"送信済み": "Sent Items", "ごみ箱": "Deleted Items",
                 "迷惑メール": "Junk Email", "Drafts": "Drafts"}
NEW_TO_LEGACY = {v: k for k, v in LEGACY_TO_NEW.items()}

PORT_NAMES = ["LEGACY_IMAP_PORT", "LEGACY_IMAPS_PORT", "LEGACY_SUBMISSION_PORT",
              "NEW_IMAP_PORT", "NEW_IMAPS_PORT", "NEW_SUBMISSION_PORT",
              "SINK_NEW_PORT", "SINK_LEGACY_PORT",
              "IMAPMERGE_IMAP_PORT", "IMAPMERGE_IMAPS_PORT",
              "IMAPMERGE_SUBMISSION_PORT", "IMAPMERGE_SUBMISSIONS_PORT"]


# ---------------------------------------------------------------- helpers

def mutf7_encode(name):
    """RFC 3501 modified UTF-7 (what Dovecot stores on disk and sends)."""
    out, buf = [], []

    def flush():
        if buf:
            raw = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=")
                       .replace("/", ",") + "-")
            buf.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(s):
    out, i = [], 0
    while i < len(s):
        if s[i] != "&":
            out.append(s[i])
            i += 1
            continue
        j = s.index("-", i)
        if j == i + 1:
            out.append("&")
        else:
            b = s[i + 1:j].replace(",", "/")
            b += "=" * (-len(b) % 4)
            out.append(base64.b64decode(b).decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def free_ports(n):
    """n distinct loopback ports free on 127.0.0.1 and ::1 right now."""
    ports, socks = [], []
    while len(ports) < n:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        try:
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s6.bind(("::1", port))
            socks.append(s6)
        except OSError:
            s.close()
            continue
        socks.append(s)
        ports.append(port)
    for s in socks:
        s.close()
    return ports


def dovecot_ids():
    pw = pwd.getpwnam("dovecot")
    return pw.pw_uid, pw.pw_gid


def chown_dovecot(path):
    uid, gid = dovecot_ids()
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kw)


def wait_banner(port, prefix, timeout=10.0):
    """Waits until port greets with prefix (None: until it accepts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if prefix is None or s.recv(200).startswith(prefix):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def load_env(tbdir):
    env = {}
    with open(os.path.join(tbdir, "env.sh")) as f:
        for line in f:
            m = re.match(r"export (\w+)=(.*)$", line.strip())
            if m:
                env[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
    return env


# ---------------------------------------------------------------- CA

def make_ca(tbdir):
    ca = os.path.join(tbdir, "ca")
    os.makedirs(ca, exist_ok=True)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", f"{ca}/ca.key", "-out", f"{ca}/ca.crt", "-days", "30",
         "-subj", "/CN=imapmerge test bed CA"])
    for name in ("new", "legacy", "imapmerge", "rogue"):
        make_cert(ca, name)
    # A second, unrelated CA: its certificate must never verify.
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", f"{ca}/other-ca.key", "-out", f"{ca}/other-ca.crt",
         "-days", "30", "-subj", "/CN=some other CA"])
    make_cert(ca, "other", issuer="other-ca")
    os.chmod(ca, 0o755)
    for f in os.listdir(ca):
        os.chmod(os.path.join(ca, f), 0o644)
    uid, gid = dovecot_ids()
    for f in os.listdir(ca):
        os.chown(os.path.join(ca, f), uid, gid)


def make_cert(ca, name, issuer="ca"):
    ext = os.path.join(ca, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1\n"
                "basicConstraints = CA:FALSE\n"
                "extendedKeyUsage = serverAuth\n")
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
         f"{ca}/{name}.key", "-out", f"{ca}/{name}.csr",
         "-subj", f"/CN=localhost/O=test bed {name}"])
    run(["openssl", "x509", "-req", "-in", f"{ca}/{name}.csr", "-CA",
         f"{ca}/{issuer}.crt", "-CAkey", f"{ca}/{issuer}.key",
         "-CAcreateserial", "-out", f"{ca}/{name}.crt", "-days", "30",
         "-extfile", ext])


# ---------------------------------------------------------------- Dovecot

DOVECOT_CONF = """\
instance_name = tb-{side}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap submission
listen = 127.0.0.1, ::1
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovecot
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# Thousands of sessions at once (the load test and benchmarks): a few
# login processes proxy TLS for many connections, and one imap process
# serves many, instead of a process per connection.
service imap-login {{
  chroot =
  service_count = 0
  process_min_avail = 1
  client_limit = 2000
  vsz_limit = 1G
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service imap {{
  service_count = 0
  client_limit = 50
  process_limit = 400
}}
service submission-login {{
  chroot =
  inet_listener submission {{
    port = {submission}
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
ssl = yes
ssl_cert = <{ca}/{side}.crt
ssl_key = <{ca}/{side}.key
disable_plaintext_auth = no
auth_mechanisms = {mechs}
auth_failure_delay = 0
auth_verbose = yes
{passdbs}
userdb {{
  driver = passwd-file
  args = username_format=%n {d}/passwd
  default_fields = uid=dovecot gid=dovecot home={d}/mail/%n
}}
mail_location = {location}
mail_fsync = never
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 0
hostname = {side}.testbed.invalid
submission_relay_host = 127.0.0.1
submission_relay_port = {sink}
submission_relay_trusted = yes
submission_relay_ssl = no
protocol submission {{
  ssl = required
}}
protocol imap {{
  mail_max_userip_connections = 1000
{imap_extra}
}}
namespace inbox {{
  inbox = yes
  separator = {sep}
  prefix =
{mailboxes}
}}
"""

PASSDB_PASSWORD = """passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {d}/passwd
  mechanisms = plain login
}}"""

PASSDB_OAUTH = """passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/dovecot-oauth2.conf.ext
}}"""


def dovecot_conf(tbdir, side, ports):
    d = os.path.join(tbdir, side)
    if side == "new":
        boxes = "".join(f'  mailbox "{name}" {{\n    special_use = {su}\n'
                        f'    auto = subscribe\n  }}\n'
                        for name, su in NEW_ROLE_FOLDERS.items())
        passdbs = PASSDB_PASSWORD.format(d=d) + "\n" + PASSDB_OAUTH.format(d=d)
        mechs = "plain login xoauth2 oauthbearer"
        location = "maildir:~/Maildir:LAYOUT=fs"
        sep = "/"
    else:
        boxes = "".join(f'  mailbox "{name}" {{\n    auto = subscribe\n  }}\n'
                        for name in LEGACY_ROLE_FOLDERS)
        passdbs = PASSDB_PASSWORD.format(d=d)
        mechs = "plain login"
        location = "maildir:~/Maildir"
        sep = "."
    # The legacy server's extensions are unknown: the test bed gives it
    # the bare minimum (no SASL-IR, LITERAL+, NAMESPACE, LIST-EXTENDED,
    # SPECIAL-USE) so that imapmerge must discover, never assume.
    imap_extra = "  imap_capability = IMAP4rev1 IDLE" if side == "legacy" \
        else ""
    up = side.upper()
    return DOVECOT_CONF.format(
        side=side, d=d, ca=os.path.join(tbdir, "ca"),
        imap=ports[f"{up}_IMAP_PORT"], imaps=ports[f"{up}_IMAPS_PORT"],
        submission=ports[f"{up}_SUBMISSION_PORT"],
        sink=ports[f"SINK_{up}_PORT"], mechs=mechs, passdbs=passdbs,
        location=location, sep=sep, mailboxes=boxes, imap_extra=imap_extra)


def write_passwd(tbdir, side, users):
    d = os.path.join(tbdir, side)
    with open(os.path.join(d, "passwd.tmp"), "w") as f:
        for user, pw in users.items():
            f.write(f"{user}:{{PLAIN}}{pw}::::{d}/mail/{user}::\n")
    os.chmod(os.path.join(d, "passwd.tmp"), 0o644)
    os.replace(os.path.join(d, "passwd.tmp"), os.path.join(d, "passwd"))


def read_users(tbdir):
    users = {}
    with open(os.path.join(tbdir, "new", "passwd")) as f:
        for line in f:
            name, pw = line.split(":")[0], line.split(":")[1]
            users[name] = pw.replace("{PLAIN}", "")
    return users


def oauth_setup(tbdir):
    d = os.path.join(tbdir, "new")
    key = secrets.token_bytes(32)
    kdir = os.path.join(d, "oauth2-keys", "default", "HS256")
    os.makedirs(kdir, exist_ok=True)
    with open(os.path.join(kdir, "default"), "w") as f:
        f.write(base64.b64encode(key).decode())
    with open(os.path.join(tbdir, "oauth2.key"), "wb") as f:
        f.write(key)
    with open(os.path.join(d, "dovecot-oauth2.conf.ext"), "w") as f:
        f.write("introspection_mode = local\n"
                f"local_validation_key_dict = fs:posix:prefix={d}/oauth2-keys/\n"
                "username_attribute = sub\n")


def make_token(tbdir, user, ttl=3600, expired=False, wrong_key=False):
    with open(os.path.join(tbdir, "oauth2.key"), "rb") as f:
        key = f.read()
    if wrong_key:
        key = hashlib.sha256(key).digest()

    def b64(b):
        return base64.urlsafe_b64encode(b).decode().rstrip("=")
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": user.lower(), "iat": now - 10,
              "exp": now - 60 if expired else now + ttl}
    signing = b64(json.dumps(header).encode()) + "." + \
        b64(json.dumps(claims).encode())
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(sig)


def mail_root(tbdir, side, user):
    return os.path.join(tbdir, side, "mail", user, "Maildir")


def folder_dir(tbdir, side, user, folder):
    """The Maildir directory of a folder given by its unified name."""
    root = mail_root(tbdir, side, user)
    if folder.upper() == "INBOX":
        return root
    if side == "new":
        return os.path.join(root, *[mutf7_encode(p) for p in folder.split("/")])
    parts = folder.split("/")
    parts[0] = NEW_TO_LEGACY.get(parts[0], parts[0]) if len(parts) == 1 \
        else parts[0]
    return os.path.join(root, "." + ".".join(mutf7_encode(p) for p in parts))


def make_maildir(path, legacy_folder=False):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    if legacy_folder:
        open(os.path.join(path, "maildirfolder"), "a").close()


def create_user_dirs(tbdir, user):
    for side in ("new", "legacy"):
        make_maildir(mail_root(tbdir, side, user))
    for name in NEW_ROLE_FOLDERS:
        make_maildir(folder_dir(tbdir, "new", user, name))
    for name in LEGACY_ROLE_FOLDERS:
        make_maildir(os.path.join(mail_root(tbdir, "legacy", user),
                                  "." + mutf7_encode(name)), True)
    make_maildir(folder_dir(tbdir, "legacy", user, "Archive"), True)
    make_maildir(folder_dir(tbdir, "legacy", user, "Archive/2019"), True)
    for side in ("new", "legacy"):
        chown_dovecot(os.path.join(tbdir, side, "mail", user))


# ---------------------------------------------------------------- up/down

def record_pid(tbdir, name, pid):
    with open(os.path.join(tbdir, "pids"), "a") as f:
        f.write(f"{name} {pid}\n")


def process_alive(pid):
    """Running, not a zombie nobody reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_dovecot(tbdir, side):
    d = os.path.join(tbdir, side)
    pidfile = os.path.join(d, "run", "master.pid")
    if os.path.exists(pidfile):
        # A master killed with SIGKILL leaves its pid file behind, and its
        # zombie may linger: Dovecot would think itself still running.
        with open(pidfile) as f:
            old = f.read().strip()
        if not old.isdigit() or not process_alive(int(old)):
            os.unlink(pidfile)
    penalty = os.path.join(d, "run", "anvil-auth-penalty")
    if os.path.exists(penalty):
        os.unlink(penalty)
    # Dovecot forks into the background: its output goes to a file, or
    # the daemon would hold our pipe open forever.
    # runuser's PAM session resets the open-file limit to 1024: a master
    # serving thousands of connections (load test) needs its hard limit.
    with open(os.path.join(d, "start.log"), "wb") as out:
        r = subprocess.run(["runuser", "-u", "dovecot", "--", "sh", "-c",
                            'ulimit -n "$(ulimit -Hn)"; exec "$@"', "sh",
                            "dovecot", "-c", os.path.join(d, "dovecot.conf")],
                           stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=30)
    if r.returncode != 0:
        log = open(os.path.join(d, "start.log")).read()
        if os.path.exists(os.path.join(d, "dovecot.log")):
            log += open(os.path.join(d, "dovecot.log")).read()[-3000:]
        raise RuntimeError(f"dovecot {side} failed to start:\n{log}")
    # Dovecot creates its pid file, then writes the pid: wait for both.
    pidfile = os.path.join(d, "run", "master.pid")
    pid = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(pidfile) as f:
                pid = f.read().strip()
        except FileNotFoundError:
            pass
        if pid.isdigit():
            break
        time.sleep(0.02)
    if not pid.isdigit():
        raise RuntimeError(f"dovecot {side}: no pid in {pidfile}")
    record_pid(tbdir, f"dovecot-{side}", int(pid))


def dovecot_pids(tbdir, side):
    """The master of one side's Dovecot and all its descendants."""
    with open(os.path.join(tbdir, side, "run", "master.pid")) as f:
        master = int(f.read().strip())
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out = [master]
    i = 0
    while i < len(out):
        out += children.get(out[i], [])
        i += 1
    return out


def signal_dovecot(tbdir, side, sig):
    """SIGSTOP/SIGCONT one side's Dovecot, every process of it."""
    for pid in dovecot_pids(tbdir, side):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_dovecot(tbdir, side):
    """Stops one side's Dovecot (all its connections go with it)."""
    pids = dovecot_pids(tbdir, side)
    signal_dovecot(tbdir, side, signal.SIGCONT)
    os.kill(pids[0], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and \
            any(process_alive(p) for p in pids):
        time.sleep(0.05)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_daemon(tbdir, name, args):
    logf = open(os.path.join(tbdir, f"{name}.log"), "ab")
    p = subprocess.Popen([PY, os.path.join(HERE, "testbed")] + args,
                         stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    record_pid(tbdir, name, p.pid)
    return p


def up(tbdir, ttl=3600):
    """Starts everything; on any failure stops what already started."""
    try:
        return _up(os.path.abspath(tbdir), ttl)
    except BaseException:
        down(os.path.abspath(tbdir))
        raise


def _up(tbdir, ttl):
    if os.path.exists(os.path.join(tbdir, "pids")):
        down(tbdir)
    if os.path.isdir(tbdir):
        shutil.rmtree(tbdir)
    os.makedirs(tbdir)
    os.chmod(tbdir, 0o755)
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    make_ca(tbdir)
    for side in ("new", "legacy"):
        d = os.path.join(tbdir, side)
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            f.write(dovecot_conf(tbdir, side, ports))
        write_passwd(tbdir, side, USERS)
    oauth_setup(tbdir)
    pool = {f"pool{i:02d}": f"pw-pool{i:02d}" for i in range(POOL)}
    for side in ("new", "legacy"):
        write_passwd(tbdir, side, {**USERS, **pool})
    for user in list(USERS) + list(pool):
        create_user_dirs(tbdir, user)
    for side in ("new", "legacy"):
        chown_dovecot(os.path.join(tbdir, side))
    env = make_env(tbdir, ports)
    write_env(tbdir, env)
    write_imapmerge_conf(tbdir, ports)
    for side in ("new", "legacy"):
        start_daemon(tbdir, f"sink-{side}", ["sink", "--dir", tbdir, "--side",
                                             side, "--port",
                                             str(ports[f"SINK_{side.upper()}_PORT"])])
        start_dovecot(tbdir, side)
    start_daemon(tbdir, "watchdog", ["watchdog", "--dir", tbdir, "--ttl",
                                     str(ttl)])
    for name in ("LEGACY_IMAP_PORT", "NEW_IMAP_PORT"):
        if not wait_banner(ports[name], b"* OK"):
            raise RuntimeError(f"{name} does not answer")
    for name in ("LEGACY_IMAPS_PORT", "NEW_IMAPS_PORT"):
        if not wait_banner(ports[name], None):
            raise RuntimeError(f"{name} does not answer")
    for name in ("LEGACY_SUBMISSION_PORT", "NEW_SUBMISSION_PORT",
                 "SINK_NEW_PORT", "SINK_LEGACY_PORT"):
        if not wait_banner(ports[name], b"220"):
            raise RuntimeError(f"{name} does not answer")
    return env


def make_env(tbdir, ports):
    env = {"TESTBED_DIR": tbdir,
           "TESTBED_CA": os.path.join(tbdir, "ca", "ca.crt"),
           "LEGACY_HOST": "localhost", "NEW_HOST": "localhost",
           "TESTBED_USERS": " ".join(f"{u}:{p}" for u, p in USERS.items()),
           "IMAPMERGE_CONF": os.path.join(tbdir, "imapmerge.conf"),
           "IMAPMERGE_XOAUTH2_CONF": os.path.join(tbdir, "imapmerge-xoauth2.conf")}
    env.update({k: str(v) for k, v in ports.items()})
    return env


def write_env(tbdir, env):
    with open(os.path.join(tbdir, "env.sh"), "w") as f:
        for k, v in env.items():
            f.write(f"export {k}={shlex.quote(v)}\n")


IMAPMERGE_CONF = """\
# imapmerge in front of the test bed (written by tests/testbed/testbed up).
state-dir "{d}/imapmerge-state"
tls-certificate "{d}/ca/imapmerge.crt"
tls-key "{d}/ca/imapmerge.key"
connect-timeout 5s
poll-interval 2s
sent-copy-wait 5s
listen imap 127.0.0.1:{imap} starttls
listen imap [::1]:{imap} starttls
listen imap 127.0.0.1:{imaps} tls
listen imap [::1]:{imaps} tls
listen submission 127.0.0.1:{sub} starttls
listen submission 127.0.0.1:{subs} tls

legacy {{
	imap localhost:{l_imaps} tls
	submission localhost:{l_sub} starttls
	ca-file "{d}/ca/ca.crt"
	username "%n"
}}

new {{
	imap localhost:{n_imaps} tls
	submission localhost:{n_sub} starttls
	ca-file "{d}/ca/ca.crt"
	username "%n"
{new_auth}
	files-sent-copies yes
}}

send-via legacy "*@ml.example.ac.jp"
"""


def write_imapmerge_conf(tbdir, ports, name="imapmerge.conf", xoauth2=False,
                         extra=""):
    if xoauth2:
        new_auth = ("\tauth xoauth2\n\ttoken-command \"" + PY + " " +
                    os.path.join(HERE, "testbed") + " token --dir " + tbdir +
                    " %u\"")
    else:
        new_auth = "\tauth password"
    text = IMAPMERGE_CONF.format(
        d=tbdir, imap=ports["IMAPMERGE_IMAP_PORT"],
        imaps=ports["IMAPMERGE_IMAPS_PORT"],
        sub=ports["IMAPMERGE_SUBMISSION_PORT"],
        subs=ports["IMAPMERGE_SUBMISSIONS_PORT"],
        l_imaps=ports["LEGACY_IMAPS_PORT"], l_sub=ports["LEGACY_SUBMISSION_PORT"],
        n_imaps=ports["NEW_IMAPS_PORT"], n_sub=ports["NEW_SUBMISSION_PORT"],
        new_auth=new_auth) + extra
    path = os.path.join(tbdir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    if not xoauth2 and name == "imapmerge.conf":
        write_imapmerge_conf(tbdir, ports, "imapmerge-xoauth2.conf", True)
    return path


def ours(pid, name):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().decode("utf-8", "replace")
    except OSError:
        return False
    if name.startswith("dovecot"):
        return "dovecot" in cmd
    if name == "imapmerge":
        return "imapmerge" in cmd
    return "testbed" in cmd


def down(tbdir):
    tbdir = os.path.abspath(tbdir)
    path = os.path.join(tbdir, "pids")
    if not os.path.exists(path):
        return
    entries = [l.split() for l in open(path) if l.strip()]
    me = os.getpid()
    for name, pid in entries:
        pid = int(pid)
        if pid != me and ours(pid, name):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for name, pid in entries:
        pid = int(pid)
        while pid != me and ours(pid, name) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid != me and ours(pid, name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Dovecot's children go with the master; wait until its ports close.
    os.unlink(path)


def adduser(tbdir, name, password="secret"):
    users = read_users(tbdir)
    users[name] = password
    create_user_dirs(tbdir, name)
    for side in ("new", "legacy"):
        write_passwd(tbdir, side, users)
    # Dovecot looks at the file at most once a second: let a second pass.
    time.sleep(1.05 - time.time() % 1)


def take_user(tbdir):
    """A pool user nobody has used yet in this test bed, or a new one."""
    path = os.path.join(tbdir, "pool-used")
    used = set(open(path).read().split()) if os.path.exists(path) else set()
    for i in range(POOL):
        name = f"pool{i:02d}"
        if name not in used:
            with open(path, "a") as f:
                f.write(name + "\n")
            return name, f"pw-{name}"
    name = "u" + secrets.token_hex(5)
    adduser(tbdir, name, "pw-" + name)
    return name, "pw-" + name


# ---------------------------------------------------------------- sink

def sink(tbdir, side, port):
    """SMTP sink: delivers into the recipient's INBOX on the new server and,
    for the new side, files the sender's copy in Sent Items (as Office 365
    does).  One JSON line per message in DIR/sink-SIDE.log.jsonl."""
    from aiosmtpd.controller import Controller

    class Handler:
        # Refusals on cue, for tests of how they travel back: a sender
        # Office 365 will not let the user send as, an unknown recipient,
        # a message refused after DATA.
        async def handle_MAIL(self, server, session, envelope, address,
                              options):
            if address.split("@")[0].lower() == "sendas-denied":
                return ("550 5.7.60 SMTP; Client does not have permissions "
                        "to send as this sender")
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            return "250 OK"

        async def handle_RCPT(self, server, session, envelope, address,
                              options):
            if address.split("@")[0].lower() == "nosuchuser":
                return "550 5.1.1 Recipient address rejected: no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            data = envelope.original_content or envelope.content
            if isinstance(data, str):
                data = data.encode()
            if re.search(rb"(?im)^x-testbed-reject: yes", data):
                return "554 5.6.0 Message rejected by policy"
            if re.search(rb"(?im)^x-testbed-stall: yes", data):
                import asyncio
                await asyncio.sleep(20)     # a test kills the relay meanwhile
                return "451 4.3.0 Stalled"
            msg = f"X-Testbed-Relay: {side}\r\n".encode() + data
            users = read_users(tbdir)
            delivered = []
            for rcpt in envelope.rcpt_tos:
                local = rcpt.split("@")[0].lower()
                if local in users:
                    deliver(tbdir, "new", local, "INBOX", msg)
                    delivered.append(local)
            sender = (envelope.mail_from or "").split("@")[0].lower()
            filed = False
            if side == "new" and sender in users:
                deliver(tbdir, "new", sender, "Sent Items", data, seen=True)
                filed = True
            mid = re.search(rb"(?im)^message-id:\s*(<[^>]*>)", data)
            with open(os.path.join(tbdir, f"sink-{side}.jsonl"), "a") as f:
                f.write(json.dumps({"from": envelope.mail_from,
                                    "to": envelope.rcpt_tos,
                                    "message_id": mid.group(1).decode()
                                    if mid else None,
                                    "delivered": delivered,
                                    "sent_copy": filed,
                                    "size": len(data)}) + "\n")
            return "250 OK delivered"

    ctl = Controller(Handler(), hostname="127.0.0.1", port=port,
                     decode_data=False)
    ctl.start()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    finally:
        ctl.stop()


def deliver(tbdir, side, user, folder, data, seen=False, when=None,
            legacy_name=None):
    d = folder_dir(tbdir, side, user, folder) if legacy_name is None \
        else legacy_name
    make_maildir(d, side == "legacy" and folder.upper() != "INBOX")
    when = when or time.time()
    base = f"{int(when)}.M{random.randrange(1 << 30)}P{os.getpid()}.testbed"
    tmp = os.path.join(d, "tmp", base)
    with open(tmp, "wb") as f:
        f.write(data)
    os.utime(tmp, (when, when))
    uid, gid = dovecot_ids()
    os.chown(tmp, uid, gid)
    dest = os.path.join(d, "cur", base + ":2," + ("S" if seen else "")) \
        if seen else os.path.join(d, "new", base)
    os.rename(tmp, dest)
    for p in (d, os.path.join(d, "cur"), os.path.join(d, "new"),
              os.path.join(d, "tmp")):
        os.chown(p, uid, gid)
    return dest


def watchdog(tbdir, ttl):
    deadline = time.monotonic() + ttl
    while time.monotonic() < deadline:
        time.sleep(min(5, max(0.1, deadline - time.monotonic())))
        if not os.path.exists(os.path.join(tbdir, "pids")):
            return
    down(tbdir)


# ---------------------------------------------------------------- seeding

SUBJECTS = ["会議の議事録について", "Re: 予算申請", "Weekly report",
            "研究室ミーティング", "Fwd: 出張報告", "Invoice 2024-11",
            "学会発表の件", "Lunch?"]


def encode_subject(s):
    try:
        s.encode("ascii")
        return s
    except UnicodeEncodeError:
        return "=?UTF-8?B?" + base64.b64encode(s.encode()).decode() + "?="


def make_message(i, user, rng, size=0, message_id=True, exchange_id=False,
                 folder="INBOX", when=None):
    when = when or 1700000000 + i * 3600 + rng.randrange(600)
    mid = f"<seed-{i}-{rng.randrange(1 << 40):x}@example.ac.jp>"
    subj = f"{rng.choice(SUBJECTS)} #{i}"
    hdr = []
    if message_id:
        hdr.append(f"Message-ID: {mid}")
    hdr += [f"Date: {email.utils.formatdate(when, localtime=False)}",
            f"From: Sender {i} <sender{i % 17}@example.ac.jp>",
            f"To: {user}@example.ac.jp",
            f"Subject: {encode_subject(subj)}",
            "MIME-Version: 1.0"]
    body = f"Message {i} for {user} in {folder}.\r\n"
    if size > len(body):
        line = ("The quick brown fox jumps over the lazy dog. " * 2)[:76]
        body += ("".join(line + "\r\n" for _ in range(size // 78 + 1)))[:size]
    if i % 5 == 0:
        b = f"b{i}"
        hdr.append(f'Content-Type: multipart/alternative; boundary="{b}"')
        body = (f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                f"{body}\r\n--{b}\r\nContent-Type: text/html; charset=utf-8"
                f"\r\n\r\n<p>{i}</p>\r\n--{b}--\r\n")
    else:
        hdr.append("Content-Type: text/plain; charset=utf-8")
    legacy = ("\r\n".join(hdr) + "\r\n\r\n" + body).encode()
    new = legacy
    if exchange_id and message_id:
        # Exchange rewrites Message-ID and keeps the original aside.
        new = legacy.replace(f"Message-ID: {mid}".encode(),
                             f"Message-ID: <ex-{i}@EXCH.ms.example.ac.jp>\r\n"
                             f"X-Microsoft-Original-Message-ID: {mid}".encode())
    return legacy, new, when, mid


def seed(tbdir, user, folder="INBOX", count=10, migrated=0, size=0,
         no_message_id=0, seed_value=1, exchange_ids=0, seen_every=3):
    rng = random.Random(seed_value)
    written = []
    for i in range(count):
        legacy, new, when, mid = make_message(
            i + seed_value * 100000, user, rng, size,
            when=1700000000 + seed_value * 86400 + i * 60,
            message_id=i >= no_message_id,
            exchange_id=migrated > i >= migrated - exchange_ids, folder=folder)
        seen = i % seen_every == 0
        deliver(tbdir, "legacy", user, folder, legacy, seen=seen, when=when)
        if i < migrated:
            deliver(tbdir, "new", user, folder, new, seen=seen, when=when)
        written.append(mid)
    return written


# ---------------------------------------------------------------- copier

class Conn:
    def __init__(self, env, side, user, password):
        ctx = ssl.create_default_context(cafile=env["TESTBED_CA"])
        self.side = side
        self.imap = imaplib.IMAP4_SSL("localhost",
                                      int(env[f"{side.upper()}_IMAPS_PORT"]),
                                      ssl_context=ctx)
        self.imap.login(user, password)

    def folders(self):
        typ, data = self.imap.list('""', "*")
        out = []
        for line in data:
            m = re.match(rb'\(([^)]*)\) "(.)" (.*)$', line)
            name = m.group(3).decode()
            if name.startswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            if "\\Noselect" not in m.group(1).decode():
                out.append((name, m.group(2).decode()))
        return out

    def message_ids(self, mbox):
        self.imap.select(quote(mbox), readonly=True)
        typ, data = self.imap.uid("FETCH", "1:*",
                                  "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID "
                                  "X-MICROSOFT-ORIGINAL-MESSAGE-ID)])")
        ids = set()
        for item in data:
            if isinstance(item, tuple):
                for m in re.finditer(rb"<[^>]*>", item[1]):
                    ids.add(m.group(0).decode())
        return ids


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def map_folder(legacy_name):
    parts = mutf7_decode(legacy_name).split(".")
    if parts[0].upper() == "INBOX" and len(parts) == 1:
        return "INBOX"
    parts[0] = LEGACY_TO_NEW.get(parts[0], parts[0])
    return "/".join(parts)


def copy(tbdir, user, password=None, rate=0, folders=None, loop=0):
    env = load_env(tbdir)
    password = password or read_users(tbdir)[user]
    deadline = time.monotonic() + loop
    copied = 0
    while True:
        src = Conn(env, "legacy", user, password)
        dst = Conn(env, "new", user, password)
        existing = {n for n, _ in dst.folders()}
        for lname, _ in src.folders():
            target = map_folder(lname)
            if folders and target not in folders:
                continue
            if target not in existing and target != "INBOX":
                dst.imap.create(quote(mutf7_encode(target)))
                existing.add(target)
            have = dst.message_ids(mutf7_encode(target)) \
                if target != "INBOX" else dst.message_ids("INBOX")
            copied += copy_folder(src, dst, lname, target, have, rate)
        src.imap.logout()
        dst.imap.logout()
        if not loop or time.monotonic() >= deadline:
            return copied
        time.sleep(1)


COPY_MARK = b"X-Testbed-Copied: yes\r\n"


def copy_folder(src, dst, lname, target, have, rate):
    src.imap.select(quote(lname), readonly=True)
    typ, data = src.imap.uid("FETCH", "1:*", "(FLAGS INTERNALDATE "
                             "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    todo = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta = item[0].decode()
        uid = re.search(r"UID (\d+)", meta).group(1)
        flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1)
        date = re.search(r'INTERNALDATE "([^"]*)"', meta).group(1)
        mid = re.search(rb"<[^>]*>", item[1])
        if mid and mid.group(0).decode() in have:
            continue
        todo.append((uid, flags, date))
    n = 0
    mbox = "INBOX" if target == "INBOX" else quote(mutf7_encode(target))
    for uid, flags, date in todo:
        typ, body = src.imap.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = next(x[1] for x in body if isinstance(x, tuple))
        # Mark the copy, as migration tools re-render what they copy: a
        # test can tell which copy served a body.
        raw = COPY_MARK + raw
        flags = " ".join(f for f in flags.split() if f != "\\Recent")
        dst.imap.append(mbox, f"({flags})", f'"{date}"', raw)
        n += 1
        if rate:
            time.sleep(1.0 / rate)
    return n


# ---------------------------------------------------------------- CLI

def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="testbed")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up")
    p.add_argument("dir")
    p.add_argument("--ttl", type=int, default=3600)
    p = sub.add_parser("down")
    p.add_argument("dir")
    p = sub.add_parser("token")
    p.add_argument("--dir", required=True)
    p.add_argument("user")
    p.add_argument("--expired", action="store_true")
    p.add_argument("--wrong-key", action="store_true")
    p.add_argument("--ttl", type=int, default=3600)
    p = sub.add_parser("adduser")
    p.add_argument("dir")
    p.add_argument("name")
    p.add_argument("--password", default="secret")
    p = sub.add_parser("seed")
    p.add_argument("dir")
    p.add_argument("--user", required=True)
    p.add_argument("--folder", default="INBOX")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--migrated", type=int, default=0)
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--no-message-id", type=int, default=0)
    p.add_argument("--exchange-ids", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("copy")
    p.add_argument("dir")
    p.add_argument("--user", required=True)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--folder", action="append")
    p.add_argument("--loop", type=int, default=0)
    p = sub.add_parser("sink")
    p.add_argument("--dir", required=True)
    p.add_argument("--side", required=True)
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("watchdog")
    p.add_argument("--dir", required=True)
    p.add_argument("--ttl", type=int, required=True)
    a = ap.parse_args(argv)

    if a.cmd == "up":
        env = up(a.dir, a.ttl)
        for k, v in env.items():
            print(f"export {k}={shlex.quote(v)}")
    elif a.cmd == "down":
        down(a.dir)
    elif a.cmd == "token":
        print(make_token(a.dir, a.user, a.ttl, a.expired, a.wrong_key))
        print(a.ttl if not a.expired else 1)
    elif a.cmd == "adduser":
        adduser(a.dir, a.name, a.password)
    elif a.cmd == "seed":
        ids = seed(a.dir, a.user, a.folder, a.count, a.migrated, a.size,
                   a.no_message_id, a.seed, a.exchange_ids)
        print(f"seeded {len(ids)} messages into {a.folder} for {a.user} "
              f"({a.migrated} also on new)")
    elif a.cmd == "copy":
        n = copy(a.dir, a.user, rate=a.rate, folders=a.folder, loop=a.loop)
        print(f"copied {n} messages")
    elif a.cmd == "sink":
        sink(a.dir, a.side, a.port)
    elif a.cmd == "watchdog":
        watchdog(a.dir, a.ttl)
    return 0
