"""Runs after every other module (pytest takes files in name order): no
imapmerge log of the whole run — IMAP, SMTP, variants — holds a password,
a token or an AUTHENTICATE/AUTH payload."""

import base64

import tb
from proxy import ALL_LOGS


def test_logs_hold_no_secrets(testbed):
    assert ALL_LOGS, "no imapmerge ran"
    secrets = {"secret"} | {f"pw-pool{i:02d}" for i in range(tb.POOL)}
    token = testbed.token("alice")
    payloads = [base64.b64encode(b"\0alice\0secret").decode()]
    for path in ALL_LOGS:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for s in secrets:
            assert s not in text, (path, s)
        assert token.split(".")[0] not in text, path
        for p in payloads:
            assert p not in text, path
