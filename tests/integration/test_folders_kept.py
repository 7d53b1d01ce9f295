"""Folder changes that must not hide mail: the role folders every client
and the migration rely on stay where they are, and a DELETE or RENAME that
the new server refuses changes nothing in the merged view."""

import re

import tb
from test_mailbox import login

ROLES = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk")


def role_folders(conn):
    """special-use attribute -> unified names carrying it."""
    typ, data = conn.list('""', "*")
    assert typ == "OK", data
    out = {}
    for line in data:
        m = re.match(rb'\(([^)]*)\) "/" (.*)$', line)
        name = m.group(2).decode().strip('"')
        for attr in m.group(1).decode().split():
            if attr in ROLES:
                out.setdefault(attr, []).append(name)
    return out


def legacy_mail(testbed, name, folder, count):
    """count messages in a folder only the legacy server has."""
    for i in range(count):
        tb.deliver(testbed.dir, "legacy", name, folder,
                   f"Message-ID: <kept-{folder}-{i}@example.ac.jp>\r\n"
                   f"Subject: kept {i}\r\n\r\nbody {i}\r\n".encode())


def test_role_folders_cannot_be_renamed_or_deleted(testbed, imapmerge, user):
    """Renaming Sent Items to Old Sent left two folders marked \\Sent and
    later Sent copies invisible: RENAME and DELETE of a role folder (or of
    a folder holding one) answer NO [CANNOT] with the reason, and each role
    keeps exactly one folder."""
    c = login(testbed, imapmerge, user)
    before = role_folders(c)
    assert set(before) == set(ROLES), before
    for attr in ROLES:
        (folder,) = before[attr]
        typ, data = c.rename(f'"{folder}"', '"Old 22"')
        assert typ == "NO" and data[0].startswith(b"[CANNOT]"), data
        assert b"cannot be renamed" in data[0], data
        typ, data = c.delete(f'"{folder}"')
        assert typ == "NO" and data[0].startswith(b"[CANNOT]"), data
        assert b"cannot be deleted" in data[0], data
    # A folder below a role folder is the user's own.
    sent = before["\\Sent"][0]
    assert c.create(f'"{sent}/2025"')[0] == "OK"
    assert c.rename(f'"{sent}/2025"', '"Sent 2025"')[0] == "OK"
    assert c.delete('"Sent 2025"')[0] == "OK"
    assert role_folders(c) == before
    typ, data = c.list('""', '"Old 22"')
    assert typ == "OK" and data == [None], data
    c.logout()


def test_refused_delete_changes_nothing(testbed, imapmerge, user):
    """A DELETE that the new server refuses still hid the folder and its
    unmigrated mail: the client got NO and the folder vanished anyway.
    Here the new server has Keep22 only as the \\Noselect parent of a
    child, which Dovecot refuses to delete; the legacy server has mail in
    Keep22.  The NO goes back, the folder and its mail stay, a warning is
    logged; after the child goes, the DELETE succeeds."""
    name, _ = user
    legacy_mail(testbed, name, "Keep22", 3)
    direct = testbed.imaps("new", *user)
    assert direct.create("Keep22/child")[0] == "OK"
    c = login(testbed, imapmerge, user)
    typ, data = c.select("Keep22")
    assert typ == "OK" and data == [b"3"], data
    before = (c.response("UIDVALIDITY")[1], c.uid("SEARCH", "ALL")[1])
    assert c.close()[0] == "OK"
    typ, data = c.delete("Keep22")
    assert typ == "NO", data
    # LIST reads both servers again: the folder is still there.
    typ, data = c.list('""', "Keep22")
    assert typ == "OK" and b"Keep22" in b"".join(d or b"" for d in data), \
        data
    typ, data = c.select("Keep22")
    assert typ == "OK" and data == [b"3"], data
    after = (c.response("UIDVALIDITY")[1], c.uid("SEARCH", "ALL")[1])
    assert after == before, (before, after)
    assert "event=folder-change-refused" in imapmerge.log()
    # Refused while selected: the session's folder still works.
    typ, data = c.delete("Keep22")
    assert typ == "NO", data
    typ, data = c.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and len([d for d in data if isinstance(d, tuple)]) \
        == 3, data
    assert c.unselect()[0] == "OK"
    # A rename the new server refuses (the target is taken there).
    assert direct.create("Taken22")[0] == "OK"
    typ, data = c.rename("Keep22/child", "Taken22")
    assert typ == "NO", data
    assert b"Keep22/child" in b"".join(c.list('""', "Keep22/*")[1])
    # Once the child is gone, the new server agrees.
    assert c.delete("Keep22/child")[0] == "OK"
    assert c.delete("Keep22")[0] == "OK"
    typ, data = c.list('""', "Keep22*")
    assert typ == "OK" and data == [None], data
    assert c.select("Keep22")[0] == "NO"
    direct.logout()
    c.logout()


def test_writes_make_a_noselect_new_side_real(testbed, imapmerge, user):
    """A folder with mail on the legacy server whose new side is only the
    \\Noselect parent of a child there: APPEND, COPY and MOVE into it were
    refused (NO [CANNOT]) although the folder can be selected, and
    offlineimap then deleted the source.  The new side is created as a
    real folder first, as for a folder only the legacy server has."""
    name, _ = user
    legacy_mail(testbed, name, "Parent22", 2)
    ids = testbed.seed(name, count=2, migrated=2, seed_value=2209)
    direct = testbed.imaps("new", *user)
    assert direct.create("Parent22/child")[0] == "OK"
    c = login(testbed, imapmerge, user)
    msg = (b"Message-ID: <write-into-parent22@example.ac.jp>\r\n"
           b"Subject: into a noselect parent\r\n\r\nbody\r\n")
    typ, data = c.append("Parent22", "(\\Seen)", None, msg)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    assert c.select("INBOX")[0] == "OK"
    typ, data = c.uid("SEARCH", "ALL")
    uids = data[0].split()
    typ, data = c.uid("COPY", uids[0], "Parent22")
    assert typ == "OK", data
    typ, data = c.uid("MOVE", uids[1], "Parent22")
    assert typ == "OK", data
    typ, data = c.select("Parent22")
    assert typ == "OK" and data == [b"5"], data
    subjects = b"".join(d[1] for d in c.fetch(
        "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")[1]
        if isinstance(d, tuple))
    assert b"write-into-parent22" in subjects, subjects
    for mid in ids:
        assert mid.encode() in subjects, (mid, subjects)
    # The new server holds what was written, in a real folder.
    typ, data = direct.select("Parent22")
    assert typ == "OK" and data == [b"3"], data
    direct.logout()
    c.logout()


def test_deleting_one_twin_keeps_the_other(testbed, imapmerge, user):
    """Issue 22, finding 1: two messages with one Message-ID (a list
    mail delivered twice, a message appended twice).  Deleting one hid
    the other's migrated copy for good: the twin stayed visible only
    through its legacy copy, and would vanish with the old server.  Now
    the tombstone names the deleted message: the copier's two copies go
    one to the twin (which is then served by its new copy) and one behind
    the tombstone; nothing else changes for the client."""
    name, password = user
    mid = "<twin22@example.ac.jp>"
    for n in (1, 2):
        tb.deliver(testbed.dir, "legacy", name, "INBOX",
                   f"Message-ID: {mid}\r\nX-Delivery: {n}\r\n"
                   f"Subject: list mail\r\n\r\nsame body\r\n".encode())
    tb.deliver(testbed.dir, "legacy", name, "INBOX",
               b"Message-ID: <other22@example.ac.jp>\r\nSubject: other\r\n"
               b"\r\nbody\r\n")
    c = login(testbed, imapmerge, user)
    assert c.select("INBOX")[1] == [b"3"]
    typ, data = c.uid("SEARCH", "HEADER", "X-Delivery", "1")
    (first,) = data[0].split()
    typ, data = c.uid("SEARCH", "HEADER", "X-Delivery", "2")
    (twin,) = data[0].split()
    assert c.uid("STORE", first, "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    assert c.expunge()[0] == "OK"
    before = c.uid("SEARCH", "ALL")[1][0].split()
    assert len(before) == 2 and twin in before
    # The copier copies both twins and the other message.
    assert testbed.copy(name, password) == 3
    assert c.noop()[0] == "OK"
    assert not [r for r in c.untagged_responses.get("EXPUNGE", [])], \
        c.untagged_responses
    assert c.uid("SEARCH", "ALL")[1][0].split() == before
    # The twin is served by a migrated copy now, not by the old server.
    typ, data = c.uid("FETCH", twin, "(BODY.PEEK[])")
    body = next(d[1] for d in data if isinstance(d, tuple))
    assert tb.COPY_MARK in body, body
    assert mid.encode() in body
    c.logout()
    # A fresh session sees the same two.
    c = login(testbed, imapmerge, user)
    assert c.select("INBOX")[1] == [b"2"]
    assert c.uid("SEARCH", "ALL")[1][0].split() == before
    c.logout()


def subscribed(conn, pattern="*"):
    """Unified names LSUB and LIST (SUBSCRIBED) return (they must agree)."""
    out = []
    for typ, data in (conn.lsub('""', pattern),
                      conn.list('(SUBSCRIBED) ""', pattern)):
        assert typ == "OK", data
        names = set()
        for line in data:
            if line is None:
                continue
            m = re.match(rb'\(([^)]*)\) "/" (.*)$', line)
            if b"\\NonExistent" not in m.group(1):
                names.add(m.group(2).decode().strip('"'))
        out.append(names)
    assert out[0] == out[1], out
    return out[0]


def test_subscriptions_belong_to_the_unified_folder(testbed, imapmerge,
                                                    user):
    """Issue 22, finding 11: a folder subscribed on the old server is
    created unsubscribed on the new one by the copier, and imapmerge then
    took the subscription from the new server: Thunderbird's LIST
    (SUBSCRIBED) no longer returned it, and Thunderbird dropped the folder
    and its local copy.  A subscription on either server counts; what the
    user says through imapmerge is kept in the state and decides; a folder
    only the old server has can be subscribed too."""
    name, password = user
    testbed.seed(name, folder="Sub22", count=2, seed_value=2211)
    testbed.seed(name, folder="Plain22", count=1, seed_value=2212)
    legacy = testbed.imaps("legacy", *user)
    assert legacy.subscribe("Sub22")[0] == "OK"
    legacy.logout()
    c = login(testbed, imapmerge, user)
    assert "Sub22" in subscribed(c, "*22")
    # Subscribing a folder only the legacy server has.
    assert c.subscribe("Plain22")[0] == "OK"
    assert subscribed(c, "*22") == {"Sub22", "Plain22"}
    # The copier creates both on the new server, unsubscribed there.
    assert testbed.copy(name, password, folders={"Sub22", "Plain22"}) == 3
    new = testbed.imaps("new", *user)
    assert not [ln for ln in new.lsub('""', "*22")[1] if ln]
    new.logout()
    assert subscribed(c, "*22") == {"Sub22", "Plain22"}
    # Unsubscribed through imapmerge: gone, though the old server still
    # has it subscribed; and back.
    assert c.unsubscribe("Sub22")[0] == "OK"
    assert subscribed(c, "*22") == {"Plain22"}
    other = login(testbed, imapmerge, user)
    assert subscribed(other, "*22") == {"Plain22"}
    other.logout()
    assert c.subscribe("Sub22")[0] == "OK"
    assert subscribed(c, "*22") == {"Sub22", "Plain22"}
    c.logout()


def test_deleted_folder_stays_deleted_when_copied_again(testbed, imapmerge,
                                                        user):
    """Issue 22, finding 5 (deletes): a folder deleted through imapmerge
    came back, with its mail, when the copier created it again on the new
    server.  Its name is kept in the state: what the copier makes under
    it stays out of sight, for every session and after a restart of the
    user's context, until the user creates the folder again."""
    name, password = user
    testbed.seed(name, folder="Gone22", count=2, seed_value=2213)
    c = login(testbed, imapmerge, user)
    assert c.select("Gone22")[1] == [b"2"]
    assert c.unselect()[0] == "OK"
    assert c.delete("Gone22")[0] == "OK"
    assert testbed.copy(name, password, folders={"Gone22"}) == 2
    new = testbed.imaps("new", *user)
    assert new.select("Gone22")[1] == [b"2"]      # the copier made it
    new.logout()
    typ, data = c.list('""', "Gone22*")
    assert typ == "OK" and data == [None], data
    assert c.select("Gone22")[0] == "NO"
    other = login(testbed, imapmerge, user)
    assert other.list('""', "Gone22*")[1] == [None]
    assert other.status("Gone22", "(MESSAGES)")[0] == "NO"
    other.logout()
    # Created again by the user: it is theirs, with what it holds.
    assert c.create("Gone22")[0] == "OK"
    assert b"Gone22" in b"".join(c.list('""', "Gone22*")[1])
    assert c.select("Gone22")[0] == "OK"
    c.logout()
