"""pytest fixtures over the real test bed (tests/testbed, docs/testbed.md).

- `testbed`: the two Dovecot servers and their sinks, started once per
  pytest run in a scratch directory (or reused from $TESTBED_DIR), with
  the exported settings as attributes: tb.NEW_IMAPS_PORT, tb.TESTBED_CA...
- `user`: a fresh user (name, password) on both servers for one test.
- `imapmerge`: imapmerge started on the test bed's config for one test
  module; its logs are scanned for secrets at the end of the run.
"""

import imaplib
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTBED_DIR = os.path.join(os.path.dirname(HERE), "testbed")
sys.path.insert(0, TESTBED_DIR)
sys.path.insert(0, HERE)

import tb  # noqa: E402
from proxy import Imapmerge, ALL_LOGS  # noqa: E402


class Testbed:
    def __init__(self, env):
        self.env = env
        for k, v in env.items():
            setattr(self, k, v)
        self.dir = env["TESTBED_DIR"]

    def ctx(self):
        return ssl.create_default_context(cafile=self.TESTBED_CA)

    def imaps(self, side, user="alice", password="secret", login=True):
        c = imaplib.IMAP4_SSL("localhost",
                              int(self.env[f"{side.upper()}_IMAPS_PORT"]),
                              ssl_context=self.ctx(), timeout=20)
        if login:
            c.login(user, password)
        return c

    def imap_starttls(self, side, user="alice", password="secret"):
        c = imaplib.IMAP4("localhost",
                          int(self.env[f"{side.upper()}_IMAP_PORT"]),
                          timeout=20)
        c.starttls(ssl_context=self.ctx())
        c.login(user, password)
        return c

    def adduser(self, name, password="secret"):
        tb.adduser(self.dir, name, password)

    def seed(self, user, **kw):
        return tb.seed(self.dir, user, **kw)

    def copy(self, user, password="secret", **kw):
        return tb.copy(self.dir, user, password, **kw)

    def token(self, user, **kw):
        return tb.make_token(self.dir, user, **kw)


@pytest.fixture(scope="session")
def testbed():
    reuse = os.environ.get("TESTBED_DIR")
    if reuse:
        yield Testbed(tb.load_env(reuse))
        return
    scratch = tempfile.mkdtemp(prefix="imapmerge-tb-")
    env = tb.up(scratch, ttl=3000)
    yield Testbed(env)
    tb.down(scratch)
    if not os.environ.get("IMAPMERGE_KEEP_TESTBED"):
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def user(testbed):
    return tb.take_user(testbed.dir)


@pytest.fixture(scope="module")
def imapmerge(testbed):
    log = os.path.join(testbed.dir, f"imapmerge-{uuid.uuid4().hex[:6]}.log")
    im = Imapmerge(testbed.IMAPMERGE_CONF, log,
                   testbed.IMAPMERGE_IMAP_PORT, testbed.IMAPMERGE_IMAPS_PORT)
    im.start()
    yield im
    im.stop()
