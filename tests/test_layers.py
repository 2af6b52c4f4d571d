"""The module table of docs/architecture.md is the rule for who may use whom.

Reads the table between its `layers` markers and every `#include "..."` in worker/ and sinks/, and
fails when a source file belongs to no module (a new file must be placed), to two, or includes a
header of a module its row does not list. Run by tests/run.sh in the unit tier.
"""
import fnmatch
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
SOURCES = sorted(p for d in ("worker", "sinks") for p in (ROOT / d).rglob("*") if p.suffix in (".c", ".h"))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_table():
    """{module: (patterns, allowed modules)} from the rows between the markers."""
    text = DOC.read_text()
    body = text.split("<!-- layers: begin -->", 1)[1].split("<!-- layers: end -->", 1)[0]
    modules = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("module", "") or set(cells[0]) <= set("-"):
            continue
        name, files, uses = cells
        patterns, folder = [], ""
        for token in re.findall(r"`([^`]+)`", files):
            if "/" in token:
                folder, token = token.rsplit("/", 1)
            patterns.append((folder, token))
        modules[name] = (patterns, {u.strip() for u in uses.split(",")})
    return modules


def matches(path, folder, pattern):
    rel = path.relative_to(ROOT)
    if pattern == "*":
        return str(rel.parent) == folder
    if str(rel.parent) != folder:
        return False
    return rel.name == pattern if "." in pattern else fnmatch.fnmatch(rel.stem, pattern)


def module_of(modules, path):
    return [m for m, (patterns, _) in modules.items() if any(matches(path, f, p) for f, p in patterns)]


def resolve(src, name):
    """The tree's file a quoted include names: beside src, then anywhere in worker/ and sinks/."""
    beside = src.parent / name
    if beside.exists():
        return beside
    found = [p for p in SOURCES if p.as_posix().endswith("/" + name)]
    return found[0] if len(found) == 1 else None


def test_the_table_parses_and_names_only_its_own_modules():
    modules = read_table()
    assert {"base", "consume", "main"} <= set(modules)
    for name, (patterns, uses) in modules.items():
        assert patterns, name
        assert uses <= set(modules), (name, uses - set(modules))


def test_every_source_file_is_in_exactly_one_module():
    modules = read_table()
    wrong = {str(p.relative_to(ROOT)): module_of(modules, p) for p in SOURCES}
    wrong = {p: m for p, m in wrong.items() if len(m) != 1}
    assert not wrong, f"place these files in one row of docs/architecture.md: {wrong}"


def test_no_include_crosses_the_table():
    modules = read_table()
    crossings = []
    for src in SOURCES:
        (own,) = module_of(modules, src)
        allowed = modules[own][1] | {own}
        for name in INCLUDE.findall(src.read_text()):
            target = resolve(src, name)
            if target is None:
                continue  # generated at build time or outside the tree
            (theirs,) = module_of(modules, target)
            if theirs not in allowed:
                crossings.append(f"{src.relative_to(ROOT)} ({own}) includes {name} ({theirs})")
    assert not crossings, "\n".join(crossings)


def test_the_check_can_fail():
    """A crossing that exists nowhere in the tree is caught: the measures may not use the sink."""
    modules = read_table()
    (own,) = module_of(modules, ROOT / "worker" / "measures" / "cw13.c")
    (theirs,) = module_of(modules, ROOT / "sinks" / "pgsink.h")
    assert theirs not in modules[own][1] | {own}
