"""README.md and docs/*.md: the README stays a front door, and what the pages point at exists.

Links are Markdown's ``[text](target)`` and ``![alt](target)``; an anchor is checked against the
page's headings with GitHub's heading ids (lower case, punctuation other than ``-`` and ``_``
dropped, spaces to ``-``, ``-1``, ``-2`` ... for repeats; github/cmark-gfm's ``autolink`` rule as
documented in GitHub's "Basic writing and formatting syntax", section "Section links").
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
# `foodmtl <command>`: the console script or `-m foodmtl`, not a path like foodmtl/data.
COMMAND = re.compile(r"(?:^|[\s/])foodmtl[ \t]+([a-z][\w-]*)", re.M)
# Files of this repository named in the text (placeholders such as <name>, {a,b} or * are skipped).
REPO_PATH = re.compile(r"\b((?:foodmtl|tests|experiments|data_prep|benchmarks)/[\w./-]*)(?![\w<{*])")


def code_blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def prose(text: str) -> str:
    """The text without code blocks and inline code, where a link is a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def heading_ids(text: str) -> set[str]:
    seen: Counter[str] = Counter()
    ids = set()
    for title in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        ids.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return ids


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file, or anchor in that file, does not exist."""
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target} (no file {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})")
        elif anchor and path.suffix == ".md" and anchor not in heading_ids(path.read_text()):
            broken.append(f"{target} (no heading #{anchor} in {path.name})")
    return broken


def named_commands(text: str) -> set[str]:
    return {name for block in code_blocks(text) for name in COMMAND.findall(block)}


def sub_commands() -> set[str]:
    """The names ``foodmtl --help`` lists, from the command modules (no subprocess)."""
    from foodmtl.commands import command_modules

    sub = argparse.ArgumentParser(prog="foodmtl").add_subparsers()
    for module in command_modules():
        module.register(sub)
    return set(sub.choices)


def missing_paths(text: str) -> set[str]:
    return {p.rstrip(".") for p in REPO_PATH.findall(text) if not (ROOT / p.rstrip(".")).exists()}


def test_readme_is_a_front_door_of_at_most_200_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move depth to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_points_to_an_existing_file_and_heading(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_foodmtl_command_in_code_blocks_is_a_sub_command(page):
    assert named_commands(page.read_text()) - sub_commands() == set()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_path_named_exists(page):
    assert missing_paths(page.read_text()) == set()


def test_readme_shows_the_tour_commands():
    assert {"train", "eval", "predict", "sweep", "table"} <= named_commands((ROOT / "README.md").read_text())


def test_the_checks_catch_what_they_look_for(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## W&B fallback to offline\n\n## Notes\n\n## Notes\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#wb-fallback-to-offline) [repeat](other.md#notes-1) [web](https://x.org/a)\n"
                    "[gone](missing.md) [no heading](other.md#nowhere) `[code](not-a-link.md)`\n"
                    "```bash\nfoodmtl train a.yaml\nfoodmtl trian a.yaml\ntorchrun -m foodmtl eval c.pt\n```\n"
                    "see `foodmtl/config.py` and `foodmtl/data/sets/<name>.py`\n")
    assert broken_links(page) == [f"missing.md (no file {tmp_path / 'missing.md'})",
                                  "other.md#nowhere (no heading #nowhere in other.md)"]
    text = page.read_text()
    assert named_commands(text) - sub_commands() == {"trian"}
    assert missing_paths(text) == {"foodmtl/config.py"}
