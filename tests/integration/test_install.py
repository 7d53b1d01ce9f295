"""`make install` into a staging tree (DESTDIR), as a package build runs it,
and `make uninstall` out of it.  No server is needed.

The installed configuration is the sample.  Run as root, `make install`
also gives the machine what the sample names and a staging tree cannot
hold: the _imapmerge account and Debian's placeholder certificate (so
running this test as root adds both to the machine, once).  The tree then
passes `imapmerge -n` as installed.  Without root, -n reports exactly those
missing, and passes once they are filled in."""

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("IMAPMERGE_BUILD", os.path.join(TOP, "build"))
ETC = "etc/imapmerge"
UNIT = "lib/systemd/system/imapmerge.service"
MAN8 = "usr/share/man/man8/imapmerge.8"
MAN5 = "usr/share/man/man5/imapmerge.conf.5"
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"


def make(*args):
    # A clean environment: this may run under an outer make's jobserver.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "B=" + BUILD, *args], cwd=TOP, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          **kw)


@pytest.fixture(scope="module")
def dest():
    d = tempfile.mkdtemp(prefix="imapmerge-install-")
    os.chmod(d, 0o755)          # man-db reads the pages as user man
    make("install", "DESTDIR=" + d, "PREFIX=/usr")
    yield d
    shutil.rmtree(d)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def conf_mode():
    try:
        grp.getgrnam("_imapmerge")
        return 0o640
    except KeyError:
        return 0o600


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_install_tree(dest):
    binary = os.path.join(dest, "usr/sbin/imapmerge")
    assert os.path.isfile(binary) and os.access(binary, os.X_OK)
    assert mode(binary) == 0o755
    for page in (MAN8, MAN5):
        assert mode(os.path.join(dest, page)) == 0o644
    assert read(os.path.join(dest, MAN5)) == \
        read(os.path.join(TOP, "docs/man/imapmerge.conf.5"))
    sample = os.path.join(dest, ETC, "imapmerge.conf.sample")
    conf = os.path.join(dest, ETC, "imapmerge.conf")
    assert read(sample) == read(os.path.join(TOP, "conf/imapmerge.conf"))
    assert read(conf) == read(sample)
    # root:_imapmerge 0640 when that group exists (a reload reads the file
    # after privileges were dropped), root 0600 until then.
    assert mode(sample) == mode(conf) == conf_mode()
    state = os.path.join(dest, "var/lib/imapmerge")
    assert os.path.isdir(state) and mode(state) == 0o700
    unit = read(os.path.join(dest, UNIT))
    assert "@" not in unit.replace("$MAINPID", "")
    assert re.search(r"^ExecStart=/usr/sbin/imapmerge -d -f "
                     r"/etc/imapmerge/imapmerge\.conf$", unit, re.M)
    assert re.search(r"^ReadWritePaths=/var/lib/imapmerge$", unit, re.M)
    assert re.search(r"^Type=notify$", unit, re.M)


def expected_todo():
    """What -n must report in the sample on this machine: the account and
    the TLS files the operator has to provide."""
    todo = set()
    try:
        pwd.getpwnam("_imapmerge")
    except KeyError:
        todo.add("user")
    try:
        grp.getgrnam("_imapmerge")
    except KeyError:
        todo.add("group")
    for kw, path in (("tls-certificate", SNAKEOIL_CERT),
                     ("tls-key", SNAKEOIL_KEY)):
        if not os.access(path, os.R_OK):
            todo.add(kw)
    return todo


def check(dest):
    return run(os.path.join(dest, "usr/sbin/imapmerge"), "-n", "-f",
               os.path.join(dest, ETC, "imapmerge.conf"))


def real_root():
    return os.geteuid() == 0 and "FAKEROOTKEY" not in os.environ


def test_installed_config_check(dest, tmp_path):
    conf = os.path.join(dest, ETC, "imapmerge.conf")
    todo = expected_todo()
    r = check(dest)
    if real_root():
        # The account and the placeholder certificate are on the machine
        # now, and the tree is accepted exactly as installed.
        assert todo == set()
        assert (r.returncode, r.stdout, r.stderr) == \
            (0, "configuration OK\n", ""), r.stderr
        assert mode(conf) == 0o640
        assert grp.getgrgid(os.stat(conf).st_gid).gr_name == "_imapmerge"
    elif todo:
        assert r.returncode == 1 and r.stdout == ""
        reported = {re.match(r"^[^:]+:\d+: ([a-z-]+): ", line).group(1)
                    for line in r.stderr.splitlines()}
        assert reported == todo, r.stderr
    # What the sample's comments ask for: the center's certificate and key
    # in place of the placeholder, and, where make install could not make
    # it, an account (here the one running the test).
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-days", "1", "-subj", "/CN=imap.example.ac.jp",
            "-keyout", str(key), "-out", str(cert))
    assert r.returncode == 0, r.stderr
    edits = [(r'^tls-certificate .*$', f'tls-certificate "{cert}"'),
             (r'^tls-key .*$', f'tls-key "{key}"')]
    if not real_root():
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        edits += [(r'^user _imapmerge$', f"user {user}"),
                  (r'^group _imapmerge$', f"group {group}")]
    text = read(conf)
    for old, new in edits:
        text, n = re.subn(old, new, text, flags=re.M)
        assert n == 1, old
    with open(conf, "w", encoding="utf-8") as f:
        f.write(text)
    r = check(dest)
    assert (r.returncode, r.stdout, r.stderr) == (0, "configuration OK\n", "")


@pytest.mark.parametrize("page", [MAN8, MAN5])
def test_installed_man_pages(dest, page):
    path = os.path.join(dest, page)
    r = run("groff", "-ww", "-z", "-mandoc", path)
    assert (r.returncode, r.stderr) == (0, "")
    env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80",
               LANG="C.UTF-8")
    r = run("man", "-l", path, env=env)
    assert r.returncode == 0, r.stderr
    assert "NAME" in r.stdout and "imapmerge" in r.stdout


def test_reinstall_keeps_config(dest):
    conf = os.path.join(dest, ETC, "imapmerge.conf")
    sample = os.path.join(dest, ETC, "imapmerge.conf.sample")
    with open(conf, "a", encoding="utf-8") as f:
        f.write("# edited by the operator\n")
    with open(sample, "a", encoding="utf-8") as f:
        f.write("# stale sample\n")
    edited = read(conf)
    out = make("install", "DESTDIR=" + dest, "PREFIX=/usr", "HOST_SETUP=no")
    assert "imapmerge.conf exists, left as it is" in out
    assert "not creating the _imapmerge account or a certificate" in out
    assert read(conf) == edited
    assert read(sample) == read(os.path.join(TOP, "conf/imapmerge.conf"))
    assert mode(conf) == conf_mode()


def test_uninstall(dest):
    make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
    for gone in ("usr/sbin/imapmerge", MAN8, MAN5, UNIT,
                 ETC + "/imapmerge.conf.sample"):
        assert not os.path.exists(os.path.join(dest, gone)), gone
    assert "# edited by the operator" in \
        read(os.path.join(dest, ETC, "imapmerge.conf"))
    assert os.path.isdir(os.path.join(dest, "var/lib/imapmerge"))


def test_unit_verifies(tmp_path):
    """systemd-analyze checks that ExecStart's program exists, so the unit
    is verified from an install whose paths are real (no DESTDIR)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not on this machine: "
                    "the unit is not verified")
    root = str(tmp_path)
    make("install", "PREFIX=" + root, "SYSCONFDIR=" + root + "/etc",
         "STATEDIR=" + root + "/state", "SYSTEMDUNITDIR=" + root + "/unit")
    unit = os.path.join(root, "unit/imapmerge.service")
    assert f"ExecStart={root}/sbin/imapmerge -d -f " \
        f"{root}/etc/imapmerge/imapmerge.conf\n" in read(unit)
    env = dict(os.environ, MANPATH=root + "/share/man")
    r = run("systemd-analyze", "verify", unit, env=env, cwd=root)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
