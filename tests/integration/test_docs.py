"""The documentation keeps up with the code (no servers needed):

- every `event=NAME` a session log line in proxy/**/*.c can carry is explained in
  docs/troubleshooting.md;
- every keyword of conf/parse.c's keyword table is in docs/config.md;
- every relative Markdown link in README.md and docs/**/*.md points to a file
  that exists.
"""

import glob
import os
import re

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# A C string literal (no newline inside), and the log calls that matter.
C_STRING = re.compile(r'"((?:\\.|[^"\\\n])*)"')
LOG_CALL = re.compile(
    r"\b(?:log_sess|log_warnx|log_warn|log_info|log_debug|fatalx|fatal)\s*\(")


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def strip_comments(src):
    """C source without comments; string literals are left alone."""
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            end = n if j == -1 else j + 2
            out.append(" " + "\n" * src.count("\n", i, end))
            i = end
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j == -1 else j
        elif src[i] == '"':
            m = C_STRING.match(src, i)
            if m is None:
                out.append(src[i])
                i += 1
            else:
                out.append(m.group(0))
                i = m.end()
        elif src[i] == "'":
            m = re.compile(r"'(?:\\.|[^'\\\n])*'").match(src, i)
            end = m.end() if m else i + 1
            out.append(src[i:end])
            i = end
        else:
            out.append(src[i])
            i += 1
    return "".join(out)


def call_strings(src, start):
    """The string literals of the call whose argument list starts at
    `start` (just after its "("), adjacent literals joined as C joins them."""
    depth, i, strings, last_end = 1, start, [], None
    while depth and i < len(src):
        c = src[i]
        if c == '"':
            m = C_STRING.match(src, i)
            if m is None:
                i += 1
                continue
            if last_end is not None and src[last_end:i].strip() == "":
                strings[-1] += m.group(1)
            else:
                strings.append(m.group(1))
            last_end = i = m.end()
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return strings


def log_events():
    """{name: [file:line, ...]} for every event=NAME in a log call; a name
    completed at run time ("event=legacy-folder-%s") is kept as its prefix
    with a trailing "-"."""
    events = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "proxy", "**", "*.c"), recursive=True)):
        src = strip_comments(read(os.path.relpath(path, ROOT)))
        for call in LOG_CALL.finditer(src):
            line = src.count("\n", 0, call.start()) + 1
            where = f"{os.path.relpath(path, ROOT)}:{line}"
            for s in call_strings(src, call.end()):
                for m in re.finditer(r"event=([a-z0-9][a-z0-9-]*)", s):
                    events.setdefault(m.group(1), []).append(where)
    return events


def test_log_events_found():
    """The scan itself works: it sees the events the code is known to log."""
    events = log_events()
    for name in ("login", "auth-failed", "backend-throttled", "sync",
                 "relayed", "legacy-folder-", "move-settle-failed"):
        assert name in events, name
    assert len(events) >= 50, sorted(events)


def test_every_log_event_in_troubleshooting():
    doc = read("docs/troubleshooting.md")
    documented = set(re.findall(r"event=([a-z0-9][a-z0-9-]*)", doc))
    missing = []
    for name, where in sorted(log_events().items()):
        if name.endswith("-"):
            ok = any(d.startswith(name) and d != name for d in documented)
        else:
            ok = name in documented
        if not ok:
            missing.append(f"event={name} ({', '.join(where)})")
    assert not missing, "not in docs/troubleshooting.md: " + "; ".join(missing)


def config_keywords():
    src = strip_comments(read("conf/parse.c"))
    m = re.search(r"static const struct keyword keywords\[\]\s*=\s*\{(.*?)\n\};",
                  src, re.S)
    assert m, "keyword table not found in conf/parse.c"
    names = re.findall(r'\{\s*"([a-z][a-z0-9-]*)"\s*,\s*KW_', m.group(1))
    assert len(names) >= 30, names
    return names


def test_every_keyword_in_config_md():
    doc = read("docs/config.md")
    missing = [k for k in config_keywords() if f"`{k}`" not in doc]
    assert not missing, "not in docs/config.md: " + ", ".join(missing)


MD_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_IMAGE = re.compile(r"!\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def markdown_files():
    files = [os.path.join(ROOT, "README.md")]
    files += glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    return sorted(files)


def without_code(text):
    """Markdown without fenced code blocks and inline code spans."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def test_markdown_files_found():
    names = {os.path.relpath(f, ROOT) for f in markdown_files()}
    for rel in ("README.md", "docs/config.md", "docs/operator.md",
                "docs/troubleshooting.md", "docs/ja/README.md"):
        assert rel in names, rel


@pytest.mark.parametrize("path", markdown_files(),
                         ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_resolve(path):
    with open(path, encoding="utf-8") as f:
        text = without_code(f.read())
    broken = []
    for pattern in (MD_LINK, MD_IMAGE):
        for m in pattern.finditer(text):
            target = m.group(1)
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue        # http:, https:, mailto: and the like
            if target.startswith("#"):
                continue        # an anchor in the same page
            file_part = target.split("#", 1)[0].split("?", 1)[0]
            resolved = os.path.normpath(
                os.path.join(os.path.dirname(path), file_part))
            if not os.path.exists(resolved):
                broken.append(target)
    assert not broken, f"{os.path.relpath(path, ROOT)}: broken links: {broken}"
