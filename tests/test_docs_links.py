"""The documentation's relative links and images resolve, and the README stays short.

Every relative link and image in README.md, CONTRIBUTING.md and docs/ must name a file or folder
of the repository (never a path outside it), and a ``#anchor`` into a Markdown file must name one
of its headings, by GitHub's rule: the heading's text in lowercase, punctuation removed, spaces
turned into '-', and '-1', '-2', ... after a repeated heading.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_README_LINES = 300

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); the text may hold one level of brackets (a badge, `a[0]`).
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text] or ![alt]
    r"\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)"  # (target "optional title")
)
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def documentation_files() -> list[Path]:
    """README.md, CONTRIBUTING.md and every Markdown page under docs/."""
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    return files + sorted((ROOT / "docs").rglob("*.md"))


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks: a '#' in a code block is no heading."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()  # inline HTML
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and '_', as GitHub does
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    result = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        result.add(anchor if count == 0 else f"{anchor}-{count}")
    return result


def links(path: Path) -> list[str]:
    """The targets of the links and images of a Markdown file, outside code."""
    targets = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        reference = REFERENCE_LINK.match(line)
        if reference:
            targets.append(reference.group(1))
            continue
        line = CODE_SPAN.sub("", line)
        targets += [match.group(1) for match in INLINE_LINK.finditer(line)]
    return [target.strip("<>") for target in targets]


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with each relative link of ``path`` (a file under ``root``), one line each."""
    problems = []
    for target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}: ({target})"
        if not resolved.is_relative_to(root):
            problems.append(f"{where} points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where}: no file {resolved.relative_to(root)}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading '#{anchor}' in {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("path", documentation_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    problems = broken_links(path)
    assert not problems, "\n".join(problems)


def test_every_documentation_file_is_checked():
    """The pages the README promises exist, so that the parametrised test above sees them."""
    names = {str(p.relative_to(ROOT)) for p in documentation_files()}
    assert {"README.md", "CONTRIBUTING.md", "docs/architecture.md"} <= names


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): put the details on a "
        "page in docs/ and keep a short paragraph with a link in the README"
    )


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Two commands", "two-commands"),
        ("Files: zarr, OME-Zarr and large TIFFs from the command line",
         "files-zarr-ome-zarr-and-large-tiffs-from-the-command-line"),
        ("Teach the model your images: correct, fine-tune, re-segment",
         "teach-the-model-your-images-correct-fine-tune-re-segment"),
        ("Label passes: hand-written against scikit-image",
         "label-passes-hand-written-against-scikit-image"),
        ("`napari-unet-weights train`", "napari-unet-weights-train"),
        ("Weighted or plain loss", "weighted-or-plain-loss"),
        ("A [link](x.md) in a heading", "a-link-in-a-heading"),
        ("snake_case stays", "snake_case-stays"),
    ],
)
def test_github_anchor(heading, anchor):
    assert github_anchor(heading) == anchor


def test_broken_links_are_found(tmp_path):
    """The checker itself: a missing file, a missing heading and a path outside are reported."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## A section\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\n"
        "[ok](docs/page.md#a-section) [self](#title) ![img](docs/page.md) [web](https://x.org)\n"
        "`[code](missing.md)`\n\n```\n[fenced](missing.md)\n```\n"
        "[gone](docs/missing.md) [no heading](docs/page.md#b-section) [out](../elsewhere.md)\n"
    )
    problems = broken_links(readme, root=tmp_path)
    assert len(problems) == 3
    assert "no file docs/missing.md" in problems[0]
    assert "no heading '#b-section'" in problems[1]
    assert "outside the repository" in problems[2]
