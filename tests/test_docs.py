"""The documentation stands on its own and stays true to the code.

* The rendered parts of docs/ (transition table, error catalogue, CLI reference, control-plane endpoints) equal
  what `tools/render_docs.py` renders from the code now.
* Every relative link in README.md, docs/ and reference/vendor/README.md leads to a file of the repository, and
  every `#anchor` to a heading of that file.
* The pages others cite exist with their headings; the README stays short.
* Nothing tracked in the repository cites or reads the behaviour contract or the reference folder that used to live
  beside the repository, nor any other path outside it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_LIMIT = 12 * 1024


@cache
def render_docs() -> ModuleType:
    """tools/render_docs.py, a plain script, imported from its file."""
    path = ROOT / "tools" / "render_docs.py"
    spec = importlib.util.spec_from_file_location("render_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_docs", module)
    spec.loader.exec_module(module)
    return module


# Rendered pages


def test_rendered_pages_are_what_the_code_renders() -> None:
    stale = render_docs().stale(ROOT)
    assert not stale, "run `python tools/render_docs.py`:\n" + "\n".join(stale.values())


def test_every_rendered_block_is_in_its_page() -> None:
    module = render_docs()
    for target in module.TARGETS:
        text = (ROOT / target.path).read_text(encoding="utf-8")
        if target.block is None:
            assert "GENERATED" in text.split("\n\n", 2)[1], f"{target.path}: no header saying it is rendered"
        else:
            assert f"<!-- BEGIN GENERATED: {target.block} -->" in text, target.path
            assert f"<!-- END GENERATED: {target.block} -->" in text, target.path


def test_check_reports_a_stale_page_with_a_diff(tmp_path: Path) -> None:
    module = render_docs()
    for target in module.TARGETS:
        copy = tmp_path / target.path
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / target.path, copy)
    assert module.stale(tmp_path) == {}
    page = tmp_path / "docs" / "errors.md"
    page.write_text(page.read_text().replace("| 422 |", "| 400 |"))
    stale = module.stale(tmp_path)
    assert list(stale) == ["docs/errors.md"]
    assert "-| `E_EMPTY_FILE` | 400 |" in stale["docs/errors.md"]
    assert "+| `E_EMPTY_FILE` | 422 |" in stale["docs/errors.md"]
    page.write_text(page.read_text().replace("<!-- END GENERATED: catalogue -->", ""))
    with pytest.raises(module.StalePage, match="catalogue"):
        module.render_all(tmp_path)


def test_the_script_checks_from_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "tools/render_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_transition_table_has_every_operation_and_state() -> None:
    from mockcore.lifecycle import ENDPOINTS, TRANSITIONS

    table = render_docs().render_transitions()
    for operation, row in TRANSITIONS.items():
        method, path = ENDPOINTS[operation]
        line = next(line for line in table.splitlines() if line.startswith(f"| `{operation}` "))
        assert f"`{method} {path}`" in line
        for outcome in row.values():
            assert f"`{outcome}`" in line, (operation, outcome)
    header = table.splitlines()[0]
    for state in next(iter(TRANSITIONS.values())):
        assert f"`{state}`" in header


def test_the_catalogue_has_every_code_with_its_status_and_text() -> None:
    from mockcore.catalogue import DEFAULT_ENTRIES

    table = render_docs().render_catalogue()
    for code, entry in DEFAULT_ENTRIES.items():
        assert f"| `{code}` | {entry.status} | {entry.text} |" in table, code


def test_the_cli_reference_has_every_command_and_option() -> None:
    import click

    from contracts.cli import main as contracts_main
    from mockcore.cli import main as mockcore_main

    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    for tool, group in (("mockcore", mockcore_main), ("mockcore-contracts", contracts_main)):
        for name, command in group.commands.items():
            assert f"\n### {tool} {name}\n" in page, (tool, name)
            section = page.split(f"\n### {tool} {name}\n", 1)[1].split("\n### ", 1)[0]
            for param in command.params:
                if isinstance(param, click.Option) and not param.hidden:
                    assert f"`{param.opts[-1]}" in section, (tool, name, param.opts)


# Links


FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks and HTML comments."""
    lines, fenced, comment = [], False, False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if fenced:
            continue
        if comment or line.lstrip().startswith("<!--"):
            comment = "-->" not in line
            continue
        lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(EXPLICIT_ANCHOR.findall(line))
        match = HEADING.match(line)
        if match:
            base = slug(match[2])
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def documentation_pages() -> list[Path]:
    pages = [README, *sorted((ROOT / "docs").rglob("*.md")), ROOT / "reference" / "vendor" / "README.md"]
    assert len(pages) > 10, pages
    return pages


def links(page: Path) -> list[str]:
    found = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        found += LINK.findall(INLINE_CODE.sub("", line))
    return found


def test_the_link_finder_sees_links_and_skips_code() -> None:
    text = "see [a](b.md#c) and ![p](../x.png)\n`[not](a-link.md)`\n```sh\n[no](no.md)\n```\n<!-- [no](c.md) -->\n"
    lines = prose_lines(text)
    assert [target for line in lines for target in LINK.findall(INLINE_CODE.sub("", line))] == ["b.md#c", "../x.png"]
    assert slug("`mockcore serve`") == "mockcore-serve"
    assert slug("Walkthrough: an online failover with curl") == "walkthrough-an-online-failover-with-curl"
    assert slug("From pytest, and the budgets") == "from-pytest-and-the-budgets"


@pytest.mark.parametrize("page", documentation_pages(), ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    problems = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not problems, "\n".join(problems)


# Pages and headings others cite


CITED_HEADINGS = {
    "docs/behaviour.md": [
        "The world",
        "Licence states",
        "Transitions",
        "Keys and slots",
        "Licence files",
        "Expiry",
        "Authentication and accounts",
        "Scans and engines",
        "Request handling",
        "Order of checks",
    ],
    "docs/decisions.md": ["Decisions where the vendor is silent", "Control-plane decisions", "Vendor conflicts"],
    "docs/errors.md": ["The catalogue", "Fidelity overrides"],
    "docs/responses.md": ["The licence view"],
    "docs/activation-server.md": ["`GET /activation`", "`GET /deactivation`"],
}


@pytest.mark.parametrize(("page", "headings"), CITED_HEADINGS.items())
def test_cited_pages_have_their_headings(page: str, headings: list[str]) -> None:
    found = anchors(ROOT / page)
    missing = [heading for heading in headings if slug(heading) not in found]
    assert not missing, f"{page} lacks {missing}"


def test_the_vendor_conflicts_anchor_is_stable() -> None:
    assert "vendor-conflicts" in anchors(ROOT / "docs" / "decisions.md")


def test_every_page_is_on_the_map() -> None:
    on_the_map = {target.partition("#")[0] for target in links(ROOT / "docs" / "README.md")}
    for page in sorted((ROOT / "docs").rglob("*.md")):
        name = page.relative_to(ROOT / "docs").as_posix()
        assert name == "README.md" or name in on_the_map, f"docs/README.md does not link {name}"


def test_the_readme_is_short_and_has_the_three_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) <= README_LIMIT, len(text.encode())
    for command in ("python3 -m pip install -e '.[test]'", "mockcore serve", "python3 -m pytest -n 2"):
        assert command in text, command
    assert "](docs/README.md)" in text


# Nothing outside the repository


OUTSIDE = ("../" + "shared", "/work/" + "shared")
CITATIONS = ("SPEC" + ".md", "SPEC" + " §")


@cache
def tracked_files() -> tuple[str, ...]:
    done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"not a git checkout: {done.stderr.strip()}")
    return tuple(name for name in done.stdout.split("\0") if name and (ROOT / name).is_file())


def _text(name: str) -> str | None:
    data = (ROOT / name).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


PARENTS = re.compile(r"__file__\)?(?:\.resolve\(\)|\.absolute\(\))?\.parents\[(\d+)\]")
PARENT_CHAIN = re.compile(r"__file__\)?(?:\.resolve\(\)|\.absolute\(\))?((?:\.parent)+)\b")
# The repository root named by a constant, then one step up: beside the repository.
ROOT_PARENT = re.compile(r"\b(?:ROOT|REPO|REPOSITORY)\.parent\b")


def problems_in(name: str, text: str) -> list[str]:
    """What in one tracked file cites the old contract or reaches outside the repository."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for needle in OUTSIDE + CITATIONS:
            if needle in line:
                found.append(f"{name}:{number}: {needle!r}: {line.strip()[:100]}")
        if name.endswith(".py"):
            depth = len(Path(name).parts) - 1  # directories between the file and the repository root
            for match in PARENTS.finditer(line):
                if int(match[1]) > depth:
                    found.append(f"{name}:{number}: parents[{match[1]}] leaves the repository: {line.strip()[:100]}")
            for match in PARENT_CHAIN.finditer(line):
                if match[1].count(".parent") > depth + 1:
                    found.append(f"{name}:{number}: {match[1]} leaves the repository: {line.strip()[:100]}")
            if ROOT_PARENT.search(line):
                found.append(f"{name}:{number}: the repository root's parent: {line.strip()[:100]}")
    return found


def test_the_outside_path_finder_catches_what_it_should() -> None:
    here = "ROOT = Path(__" + "file__)"  # split, so this file does not match itself
    assert problems_in("tests/test_x.py", here + '.resolve().parents[2] / "x"')
    assert not problems_in("tests/test_x.py", here + ".resolve().parents[1]")
    assert problems_in("tests/test_x.py", here + ".parent.parent.parent")
    assert not problems_in("tests/test_x.py", here + ".parent.parent")
    assert not problems_in("contracts/client/x.py", here + ".resolve().parents[2]")
    assert problems_in("tests/test_x.py", "EXTRACT = " + "ROOT" + '.parent / "x"')
    assert problems_in("docs/x.md", "see " + OUTSIDE[0] + "/reference")
    assert problems_in("tests/test_x.py", "# " + CITATIONS[1] + "3")


def _problems(files: list[str]) -> list[str]:
    found = []
    for name in files:
        text = _text(name)
        if text is not None:
            found += problems_in(name, text)
    return found


OTHERS = ("mockcore/", "contracts/", "pyproject.toml")


def test_nothing_outside_the_packages_cites_or_reads_outside_the_repository() -> None:
    """Everything but mockcore/, contracts/ and pyproject.toml: the docs, tests, examples, tools, bench, CI."""
    files = [name for name in tracked_files() if not name.startswith(OTHERS)]
    assert "README.md" in files and "tests/test_docs.py" in files
    found = _problems(files)
    assert not found, "\n".join(found)


def test_no_tracked_file_cites_or_reads_outside_the_repository() -> None:
    found = _problems(list(tracked_files()))
    assert not found, "\n".join(found)


def load_strict_yaml(text: str) -> list[object]:
    """YAML (every document of a stream) that refuses a mapping with a key twice (PyYAML keeps the last one
    silently)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> object:
        keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"key(s) {twice} twice in one mapping at {node.start_mark}")
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return list(yaml.load_all(text, Loader=Loader))


def test_no_yaml_document_of_the_project_has_a_key_twice() -> None:
    """A key given twice in one mapping is silently the last one for PyYAML: a description lost, a schema half
    overwritten. Every tracked YAML file (the OpenAPI documents among them) has each key once per mapping."""
    tracked = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True, text=True)
    files = [ROOT / name for name in tracked.stdout.split()]
    assert ROOT / "mockcore" / "control-openapi.yaml" in files
    for path in files:
        load_strict_yaml(path.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="twice"):
        load_strict_yaml("a:\n  b: 1\n  b: 2\n")
    with pytest.raises(ValueError, match="twice"):
        load_strict_yaml("a: 1\n---\nb: 1\nb: 2\n")  # in any document of a stream
