"""The README's screenshots: taken by the browser tests under test-artifacts/, copied by `make screenshots`.

No browser here: these check that the pieces agree (every image the README shows is one the Makefile
copies, and one a browser test takes), so that a refresh cannot silently miss or leave a picture.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.browser import SCREENSHOTS

REPO = Path(__file__).resolve().parents[2]


def makefile_screenshots() -> list[str]:
    text = (REPO / "Makefile").read_text()
    match = re.search(r"^README_SCREENSHOTS :=((?:.*\\\n)*.*)$", text, re.MULTILINE)
    assert match, "the Makefile names the README's screenshots in README_SCREENSHOTS"
    return match.group(1).replace("\\\n", " ").split()


def test_the_readme_shows_only_screenshots_that_make_screenshots_refreshes():
    shown = set(re.findall(r"docs/screenshots/([\w-]+)\.png", (REPO / "README.md").read_text()))
    listed = set(makefile_screenshots())
    assert shown and shown <= listed
    assert {p.stem for p in (REPO / "docs" / "screenshots").glob("*.png")} == listed


def test_every_listed_screenshot_is_taken_by_a_browser_test():
    taken = {
        name
        for path in Path(__file__).parent.glob("test_*.py")
        for name in re.findall(r'\.screenshot\("([\w-]+)"\)', path.read_text())
    }
    assert set(makefile_screenshots()) <= taken


def test_tests_write_screenshots_only_under_test_artifacts():
    assert SCREENSHOTS.relative_to(REPO).parts[0] == "test-artifacts"
    assert "test-artifacts/" in (REPO / ".gitignore").read_text().splitlines()
