"""The source tree keeps its layers (no servers needed):

- the repository passes tests/depcheck (each layer includes only itself and
  the layers before it; the layer table is tests/depcheck's LAYERS);
- tests/depcheck catches a break: a copy of the tree with one file added
  that breaks the rule fails, naming that file and the layer it may not use;
- the built objects keep the rule too: no object of a layer references a
  symbol defined by an object of a later or a sibling layer (so no object
  of proxy/merge/ uses one defined in proxy/imap/ or proxy/smtp/).
"""

import glob
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "depcheck")
BUILD = os.environ.get("IMAPMERGE_BUILD", os.path.join(ROOT, "build"))


def load_depcheck():
    """tests/depcheck as a module, for its layer table."""
    loader = importlib.machinery.SourceFileLoader("depcheck", SCRIPT)
    spec = importlib.util.spec_from_loader("depcheck", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


depcheck = load_depcheck()


def run(script, *args):
    out = subprocess.run([script, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=60)
    return out.returncode, out.stdout


def test_repository_respects_layers():
    rc, out = run(SCRIPT)
    assert rc == 0, out
    assert out.endswith("layers respected\n"), out


def copy_tree(dest):
    """protocol/, conf/, proxy/ and tests/depcheck copied under dest; the
    copy's depcheck, which checks the tree it lives in."""
    for top in depcheck.TOPS:
        shutil.copytree(os.path.join(ROOT, top), os.path.join(dest, top))
    os.makedirs(os.path.join(dest, "tests"))
    return shutil.copy2(SCRIPT, os.path.join(dest, "tests", "depcheck"))


def violations(out):
    """The violation lines of depcheck's output (not its summary)."""
    return {line for line in out.splitlines() if not line.startswith("depcheck:")}


@pytest.mark.parametrize("path, text, expect", [
    ("proxy/merge/zz_probe.c", '#include "proxy/imap/session_impl.h"\n',
     "proxy/merge/zz_probe.c:1: includes proxy/imap/session_impl.h "
     "(layer merge may not use layer imap)"),
    ("protocol/zz_probe.c", '#include <stdio.h>\n#  include "proxy/core/log.h"\n',
     "protocol/zz_probe.c:2: includes proxy/core/log.h "
     "(layer protocol may not use layer core)"),
    ("proxy/zz_probe.c", '#include "proxy/core/log.h"\n',
     "proxy/zz_probe.c: proxy/ holds only main.c at its top level"),
    ("proxy/imap/zz_probe.h", '#include "proxy/smtp/smtp_session.h"\n',
     "proxy/imap/zz_probe.h:1: includes proxy/smtp/smtp_session.h "
     "(layer imap may not use layer smtp)"),
    ("proxy/net/zz_probe.c", '#include "proxy/net/zz_missing.h"\n',
     "proxy/net/zz_probe.c:1: includes proxy/net/zz_missing.h "
     "(no such file in the tree)"),
], ids=["merge-uses-imap", "protocol-uses-core", "proxy-top-level",
        "imap-uses-smtp", "missing-header"])
def test_one_added_file_breaks_the_rule(tmp_path, path, text, expect):
    script = copy_tree(tmp_path)
    rc, before = run(script)
    with open(tmp_path / path, "w", encoding="utf-8") as f:
        f.write(text)
    rc, after = run(script)
    assert rc == 1, after
    assert violations(after) - violations(before) == {expect}, after
    assert after.splitlines()[-1].startswith("depcheck: "), after


def test_clean_tree_passes(tmp_path):
    """A small tree that keeps the rule passes, named as the argument."""
    files = {
        "protocol/p.h": "",
        "protocol/p.c": '#include "protocol/p.h"\n',
        "conf/c.h": '#include "protocol/p.h"\n',
        "proxy/core/k.h": '#  include "conf/c.h"\n',
        "proxy/merge/m.h": '#include "proxy/core/k.h"\n',
        "proxy/imap/i.c": '#include <stdio.h>\n#include "proxy/merge/m.h"\n',
        "proxy/smtp/s.c": '#include "proxy/merge/m.h"\n',
        "proxy/tools/t.c": '#include "proxy/core/k.h"\n',
        "proxy/main.c": '#include "proxy/core/k.h"\n#include "conf/c.h"\n',
    }
    for rel, text in files.items():
        os.makedirs(os.path.dirname(tmp_path / rel), exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    rc, out = run(SCRIPT, str(tmp_path))
    assert (rc, out) == (0, "depcheck: 9 files, 9 includes, layers respected\n")


def layer_objects():
    """{object: layer} of the built objects whose source is in a layer
    (objects left over from a source moved or removed are ignored)."""
    objects = {}
    for top in depcheck.TOPS:
        for obj in glob.glob(os.path.join(BUILD, top, "**", "*.o"), recursive=True):
            source = os.path.relpath(obj, BUILD)[:-2].replace(os.sep, "/") + ".c"
            layer = depcheck.layer_of(source)
            if layer is not None and os.path.isfile(os.path.join(ROOT, source)):
                objects[obj] = layer
    return objects


def nm(options, objects):
    """{object: set of symbol names} from `nm -A -P OPTIONS objects`."""
    out = subprocess.run(["nm", "-A", "-P", *options, *objects],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    symbols = {obj: set() for obj in objects}
    for line in out.splitlines():
        obj, _, rest = line.partition(": ")
        symbols[obj].add(rest.split()[0])
    return symbols


def test_objects_respect_layers():
    objects = layer_objects()
    if not any(layer[0].startswith("proxy/") for layer in objects.values()):
        pytest.skip(f"no proxy objects in {BUILD} (run make all)")
    definers = {}
    for obj, names in nm(["-g", "--defined-only"], objects).items():
        for name in names:
            definers.setdefault(name, []).append(obj)
    bad, used_across = [], 0
    for obj, names in sorted(nm(["-u"], objects).items()):
        user = objects[obj]
        for name in sorted(names):
            for definer in definers.get(name, []):
                used = objects[definer]
                if depcheck.may_use(user, used):
                    used_across += used != user
                    continue
                bad.append(f"{os.path.relpath(obj, BUILD)} uses {name}, defined in "
                           f"{os.path.relpath(definer, BUILD)} (layer "
                           f"{depcheck.name(user)} may not use layer "
                           f"{depcheck.name(used)})")
    assert used_across > 0, "no object uses another layer's symbol: nm found nothing?"
    assert not bad, f"{len(bad)} references across the layers:\n" + "\n".join(bad)


def calls_of(function):
    """(file, line) of each call of function in proxy/ but its definition."""
    pattern = __import__("re").compile(r"\b%s\s*\(" % function)
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, "proxy", "**", "*.c"),
                                 recursive=True)):
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        for i, line in enumerate(lines):
            if pattern.search(line) and not (i > 0 and lines[i - 1] in
                                             ("void", "static void")):
                found.append((os.path.relpath(path, ROOT), i + 1))
    return found


def test_news_told_in_one_place():
    """The untagged EXPUNGE/EXISTS/FETCH of a selected folder are written
    by the merge layer's mbox_news() into a buffer the session gives, and
    only the session's sess_news() asks for them; the merge layer reaches
    a session through its watcher, never by calling into it."""
    calls = calls_of("mbox_news")
    assert [path for path, _ in calls] == ["proxy/imap/session.c"], calls
    for path in glob.glob(os.path.join(ROOT, "proxy", "merge", "*.[ch]")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        assert "sess_" not in text.replace("sessions", ""), path
        assert "proxy/imap/" not in text and "proxy/smtp/" not in text, path
