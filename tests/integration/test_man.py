"""The manual pages: every keyword conf/parse.c accepts is described in
imapmerge.conf(5), with the default docs/config.md gives it, and both pages
format without a single groff warning.  No server is needed."""

import os
import re
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MAN = os.path.join(TOP, "docs", "man")
PAGES = ["imapmerge.8", "imapmerge.conf.5"]

# In the page before they are in the keyword table (other branches).
PENDING = {"status-listen", "shutdown-timeout"}


def read(*path):
    with open(os.path.join(TOP, *path), encoding="utf-8") as f:
        return f.read()


def table_keywords():
    """Names in conf/parse.c's `keywords[]` table, in order."""
    text = read("conf", "parse.c")
    m = re.search(r"^static const struct keyword keywords\[\] = \{\n"
                  r"(.*?)^\};", text, re.M | re.S)
    assert m, "keyword table not found in conf/parse.c"
    names = re.findall(r'^\t\{ "([a-z0-9-]+)", KW_', m.group(1), re.M)
    assert len(names) >= 30, names
    return names


def page_entries():
    """Keyword -> text of its `.It` entry in imapmerge.conf(5).  An entry
    is a `.It Ic NAME` line (or `.It Xo` followed by `.Ic NAME`) and the
    lines up to the next `.It`, `.El` or `.Sh`; one `.It` may name two."""
    entries, current = {}, []
    lines = read("docs", "man", "imapmerge.conf.5").splitlines()
    for i, line in enumerate(lines):
        if line.startswith((".It", ".El", ".Sh")):
            current = []
        if line.startswith(".It Xo") and i + 1 < len(lines):
            line = ".It " + lines[i + 1]
        if line.startswith(".It "):
            current = [m.group(1) for m in
                       re.finditer(r"\bIc ([a-z0-9-]+)", line)]
            for name in current:
                entries[name] = ""
            continue
        for name in current:
            entries[name] += line + "\n"
    return entries


def test_man_conf_has_every_keyword():
    entries = page_entries()
    missing = [k for k in table_keywords() if k not in entries]
    assert not missing, f"not in docs/man/imapmerge.conf.5: {missing}"
    assert PENDING <= set(entries)
    unknown = set(entries) - set(table_keywords()) - PENDING
    assert not unknown, f"described but not accepted: {sorted(unknown)}"


def test_man_conf_defaults_agree_with_config_md():
    """Each default that docs/config.md writes as `code` is in the entry."""
    entries = page_entries()
    checked = 0
    for row in read("docs", "config.md").splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z0-9-]+)`", cells[0])
        for default in re.findall(r"`([^`]+)`", cells[2]):
            for name in names:
                assert default in entries.get(name, ""), (name, default)
                checked += 1
    assert checked >= 15, checked


@pytest.mark.parametrize("page", PAGES)
def test_man_groff_no_warnings(page):
    r = subprocess.run(["groff", "-ww", "-z", "-mandoc",
                        os.path.join(MAN, page)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
