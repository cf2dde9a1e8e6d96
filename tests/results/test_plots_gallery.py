"""The committed gallery: every image docs/gallery.md and the README show exists, and every
committed gallery PNG is at least 150 dpi (the issue found 72 dpi panels of ~300 px) and at
most a page (`style.MAX_WIDTH`) wide (the review found 14 in wide figures)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from gradstats.results.plots import style

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "docs" / "gallery"


def _referenced() -> list[Path]:
    found = []
    for doc, base in ((ROOT / "docs" / "gallery.md", ROOT / "docs"), (ROOT / "README.md", ROOT)):
        for ref in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", doc.read_text()):
            found.append(base / ref)
    return found


def test_every_image_the_docs_show_is_committed():
    missing = [str(p.relative_to(ROOT)) for p in _referenced() if not p.is_file()]
    assert not missing, f"referenced but absent: {missing}"


IMAGES = sorted(GALLERY.glob("*.png"))


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_gallery_images_are_at_least_150_dpi_and_at_most_a_page_wide(path):
    with Image.open(path) as image:
        dpi = image.info.get("dpi", (0, 0))[0]
        assert dpi >= 149.5, f"{path.name}: {dpi} dpi"
        assert image.size[0] >= 700  # a 4.8 in one-panel figure at 150 dpi is 720 px
        # printed at its own size, no figure is wider than a page's text width
        assert image.size[0] / dpi <= style.MAX_WIDTH + 0.01, f"{path.name}: too wide"
