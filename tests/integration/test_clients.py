"""Real mail clients through imapmerge: mbsync, curl, Perl's
Mail::IMAPClient and offlineimap list the unified tree, each with
certificate verification against the test bed's CA; mbsync and offlineimap
sync a merged INBOX across a migration run."""

import os
import subprocess
import tempfile

import pytest

EXPECTED = ["INBOX", "Archive", "Archive/2019", "Deleted Items", "Drafts",
            "Junk Email", "Sent Items"]


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=60, **kw)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    return out


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def mbsync_rc(testbed, imapmerge, user, prefix, store_extra, channel):
    """A scratch directory with an mbsync config for imapmerge; (dir, rc)."""
    d = tempfile.mkdtemp(prefix=prefix)
    rc = os.path.join(d, "rc")
    write(rc, f"""IMAPAccount merged
Host localhost
Port {imapmerge.imaps_port}
User {user[0]}
Pass {user[1]}
SSLType IMAPS
CertificateFile {testbed.TESTBED_CA}
AuthMechs PLAIN

IMAPStore far
Account merged

MaildirStore near
Path {d}/mail/
Inbox {d}/mail/INBOX
{store_extra}
Channel c
{channel}""")
    os.makedirs(os.path.join(d, "mail"))
    return d, rc


def offlineimap_rc(testbed, imapmerge, user, extra=""):
    """A scratch directory with an offlineimap config; (dir, rc)."""
    d = tempfile.mkdtemp(prefix="offlineimap-")
    rc = os.path.join(d, "rc")
    write(rc, f"""[general]
accounts = merged
metadata = {d}/meta

[Account merged]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {d}/mail

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {imapmerge.imaps_port}
remoteuser = {user[0]}
remotepass = {user[1]}
ssl = yes
sslcacertfile = {testbed.TESTBED_CA}
{extra}""")
    return d, rc


def test_curl_lists_folders(testbed, imapmerge, user):
    out = run(["curl", "-sS", "--cacert", testbed.TESTBED_CA, "-u",
               f"{user[0]}:{user[1]}",
               f"imaps://localhost:{imapmerge.imaps_port}/"])
    for name in EXPECTED:
        assert f'"/" {name}\r' in out or f'"/" "{name}"\r' in out, out


def test_mbsync_lists_folders(testbed, imapmerge, user):
    d, rc = mbsync_rc(testbed, imapmerge, user, "mbsync-",
                      "SubFolders Verbatim\n",
                      "Far :far:\nNear :near:\nPatterns *\n")
    out = run(["mbsync", "-c", rc, "-l", "c"])
    for name in EXPECTED:
        assert name in out.splitlines(), out


def test_mail_imapclient_folders(testbed, imapmerge, user):
    script = """
use Mail::IMAPClient;
my $i = Mail::IMAPClient->new(Server => 'localhost', Port => $ARGV[0],
    Ssl => [ SSL_ca_file => $ARGV[1], SSL_verifycn_name => 'localhost' ],
    User => $ARGV[2], Password => $ARGV[3]) or die "login: $@";
print "$_\\n" for $i->folders;
$i->logout;
"""
    out = run(["perl", "-e", script, str(imapmerge.imaps_port),
               testbed.TESTBED_CA, user[0], user[1]])
    assert sorted(out.split("\n")[:-1]) == sorted(EXPECTED), out


def test_offlineimap_info(testbed, imapmerge, user):
    d, rc = offlineimap_rc(testbed, imapmerge, user)
    out = run(["offlineimap", "-c", rc, "-o", "-u", "basic", "--info"])
    remote = out.split("Folderlist:")[1].split("Local repository")[0]
    assert sorted(remote.split("\n ")[1:]) == sorted(EXPECTED) or \
        sorted(x.strip() for x in remote.strip().splitlines()) == \
        sorted(EXPECTED), out


def maildir_files(root):
    files = []
    for dirpath, _, names in os.walk(root):
        if os.path.basename(dirpath) in ("cur", "new"):
            files += [os.path.join(dirpath, n) for n in names]
    return files


def message_ids(files):
    import re
    out = []
    for p in files:
        with open(p, "rb") as f:
            head = f.read(4096)
        m = re.search(rb"^Message-ID:\s*(<[^>]*>)", head, re.M | re.I)
        out.append(m.group(1) if m else p)
    return out


def test_mbsync_sync_survives_migration(testbed, imapmerge, user):
    """Sync, let the migration copy the rest, sync again: nothing twice,
    nothing deleted, one file per message."""
    name, password = user
    ids = testbed.seed(name, count=40, migrated=15, seed_value=21)
    d, rc = mbsync_rc(testbed, imapmerge, user, "mbsync-", "",
                      "Far :far:INBOX\nNear :near:INBOX\nSync Pull\n"
                      "Create Near\nExpunge None\nSyncState *\n")
    run(["mbsync", "-c", rc, "c"])
    first = maildir_files(os.path.join(d, "mail", "INBOX"))
    assert sorted(message_ids(first)) == sorted(i.encode() for i in ids)
    assert testbed.copy(name, password) == 25
    out = run(["mbsync", "-V", "-c", rc, "c"])
    # The same files: nothing fetched again, nothing removed.
    second = maildir_files(os.path.join(d, "mail", "INBOX"))
    assert sorted(second) == sorted(first), out


def test_offlineimap_sync_survives_migration(testbed, imapmerge, user):
    name, password = user
    ids = testbed.seed(name, count=30, migrated=10, seed_value=22)
    d, rc = offlineimap_rc(testbed, imapmerge, user,
                           "folderfilter = lambda f: f == 'INBOX'\n"
                           "readonly = True\n")
    run(["offlineimap", "-c", rc, "-o", "-u", "basic"])
    first = maildir_files(os.path.join(d, "mail", "INBOX"))
    assert sorted(message_ids(first)) == sorted(i.encode() for i in ids)
    assert testbed.copy(name, password) == 20
    run(["offlineimap", "-c", rc, "-o", "-u", "basic"])
    second = maildir_files(os.path.join(d, "mail", "INBOX"))
    assert sorted(message_ids(second)) == sorted(message_ids(first))
    assert len(second) == len(first)
