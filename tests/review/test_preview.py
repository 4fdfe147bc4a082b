"""The report preview: GitHub-flavoured markdown to HTML, and its Chromium screenshot."""

from __future__ import annotations

import struct
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw

from modelops.errors import InputError
from modelops.review import preview

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPORT = """\
# Model report

**Verdict: PASS**: all gates passed for model `abc123`.

| metric | challenger | champion |
|---|---:|---:|
| ROC-AUC | 0.912 | 0.905 |
| average precision | 0.61 | 0.60 |

<details><summary>Slices (3)</summary>

| slice | ROC-AUC |
|---|---:|
| online | 0.90 |
| pos | 0.93 |
| atm | 0.88 |

</details>

## Plots

![ROC curve](roc.png)

Run `make pr` to reproduce, then:

```bash
make report-preview
```
"""

BLUE = (31, 119, 180)  # matplotlib's first line colour


class Page(HTMLParser):
    """What a reader of the page sees: tables, images, details and the visible text."""

    HIDDEN = frozenset({"head", "title", "style", "script"})

    def __init__(self, page: str) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tables: list[dict[str, int]] = []  # rows, and whether inside <details>
        self.images: list[dict[str, str | None]] = []
        self.details = 0
        self.summaries: list[str] = []
        self.strong: list[str] = []
        self.code: list[str] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag not in {"img", "meta", "br", "hr", "base"}:
            self.open.append(tag)
        if tag == "table":
            self.tables.append({"rows": 0, "in_details": int("details" in self.open[:-1])})
        elif tag == "tr":
            self.tables[-1]["rows"] += 1
        elif tag == "img":
            self.images.append(dict(attrs))
        elif tag == "details":
            self.details += 1

    def handle_endtag(self, tag):
        while self.open and self.open.pop() != tag:
            pass

    def handle_data(self, data):
        if self.HIDDEN & set(self.open):
            return
        self.text.append(data)
        if self.open and self.open[-1] == "summary":
            self.summaries.append(data)
        if self.open and self.open[-1] == "strong":
            self.strong.append(data)
        if self.open and self.open[-1] == "code":
            self.code.append(data)

    @property
    def visible(self) -> str:
        return "".join(self.text)


@pytest.fixture
def report(tmp_path):
    """A report folder: report.md and the roc.png it references."""
    fig, ax = plt.subplots(figsize=(3, 2), dpi=80)
    ax.plot([0, 0.1, 0.3, 1], [0, 0.6, 0.85, 1], color="#1f77b4", linewidth=3)
    fig.savefig(tmp_path / "roc.png")
    plt.close(fig)
    path = tmp_path / "report.md"
    path.write_text(REPORT)
    return path


def test_tables_images_and_details_are_rendered():
    page = Page(preview.render_html(REPORT, "report.md"))
    assert [t["rows"] for t in page.tables] == [3, 4]  # header row + body rows
    assert [t["in_details"] for t in page.tables] == [0, 1]
    assert page.details == 1
    assert page.summaries == ["Slices (3)"]
    assert [img["src"] for img in page.images] == ["roc.png"]
    assert page.images[0]["alt"] == "ROC curve"
    assert page.strong == ["Verdict: PASS"]
    assert "Verdict: PASS: all gates passed for model abc123." in page.visible
    assert {"abc123", "make pr"} <= set(page.code)


def test_no_raw_markdown_is_left():
    visible = Page(preview.render_html(REPORT, "report.md")).visible
    lines = [line.strip() for line in visible.splitlines()]
    assert not [line for line in lines if line.startswith("|")]
    for raw in ("**", "![", "```", "<details>", "<summary>"):
        assert raw not in visible
    assert "make report-preview" in visible  # the code block's content, without its fence


def test_page_is_standalone_and_runs_no_scripts():
    page = preview.render_html(REPORT + "\n<script>alert(1)</script>\n", "a <b> title")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>a &lt;b&gt; title</title>" in page
    assert "<script>" not in page  # GFM's tag filter, as on GitHub
    assert "default-src 'none'" in page  # and the CSP blocks anything else
    assert "<base" not in page
    assert "max-width: 900px" in page


def test_preview_is_written_beside_the_images(report):
    html_path = preview.write_preview(report, report.with_suffix(".html"))
    assert html_path == report.with_suffix(".html")
    page = Page(html_path.read_text())
    assert [img["src"] for img in page.images] == ["roc.png"]
    assert "<base" not in html_path.read_text()


def test_preview_written_elsewhere_still_finds_the_images(report, tmp_path):
    html_path = preview.write_preview(report, tmp_path / "elsewhere" / "report.html")
    text = html_path.read_text()
    base = text.split('<base href="', 1)[1].split('"', 1)[0]
    assert (Path(unquote(urlparse(base).path)) / "roc.png").is_file()


def test_missing_markdown_says_how_to_make_it(tmp_path):
    with pytest.raises(InputError, match="make report"):
        preview.write_preview(tmp_path / "report.md", tmp_path / "report.html")


def test_missing_chromium_names_the_fix(report, tmp_path, monkeypatch):
    html_path = preview.write_preview(report, report.with_suffix(".html"))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(InputError) as error:
        preview.screenshot(html_path, tmp_path / "report.png")
    assert "apt-get install chromium" in str(error.value)
    assert "CHROMIUM" in str(error.value)
    assert not (tmp_path / "report.png").exists()

    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-such-browser"))
    with pytest.raises(InputError, match="apt-get install chromium"):
        preview.find_chromium()


def _fake_browser(tmp_path, monkeypatch, content_height):
    """CHROMIUM set to a stub; the "screenshot" is a comment box ``content_height`` tall."""
    stub = tmp_path / "fake-chromium"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(stub))
    windows = []

    def run(command, timeout):
        width, height = (
            int(v)
            for v in next(c for c in command if c.startswith("--window-size="))
            .split("=")[1]
            .split(",")
        )
        shot = next(c for c in command if c.startswith("--screenshot=")).split("=", 1)[1]
        windows.append(height)
        image = Image.new("RGB", (width, height), "white")
        ImageDraw.Draw(image).rectangle((50, 16, width - 50, content_height), outline="gray")
        image.save(shot)

    monkeypatch.setattr(preview, "_run", run)
    return windows


def test_screenshot_grows_the_window_until_the_page_fits_then_trims(tmp_path, monkeypatch):
    windows = _fake_browser(tmp_path, monkeypatch, content_height=preview.FIRST_HEIGHT + 500)
    html_path = tmp_path / "page.html"
    html_path.write_text("<p>stub</p>")
    png = preview.screenshot(html_path, tmp_path / "page.png", width=400)
    assert windows == [preview.FIRST_HEIGHT, 2 * preview.FIRST_HEIGHT]
    with Image.open(png) as image:
        assert image.size == (400, preview.FIRST_HEIGHT + 501 + preview.MARGIN)


def test_screenshot_of_a_page_taller_than_the_limit_is_cut(tmp_path, monkeypatch):
    windows = _fake_browser(tmp_path, monkeypatch, content_height=10 * preview.MAX_HEIGHT)
    html_path = tmp_path / "page.html"
    html_path.write_text("<p>stub</p>")
    png = preview.screenshot(html_path, tmp_path / "page.png", width=200)
    assert windows[-1] == preview.MAX_HEIGHT
    with Image.open(png) as image:
        assert image.size == (200, preview.MAX_HEIGHT)


def _chromium_missing() -> bool:
    try:
        preview.find_chromium()
    except InputError:
        return True
    return False


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.skipif(
    _chromium_missing(),
    reason="no Chromium binary (chromium, chromium-browser, google-chrome or $CHROMIUM); "
    "CI installs it with apt-get install chromium",
)
def test_screenshot_in_real_chromium(report, tmp_path):
    html_path = preview.write_preview(report, report.with_suffix(".html"))
    png = preview.screenshot(html_path, tmp_path / "shots" / "report.png")
    width, height = _png_size(png)
    assert width == 1000
    assert 400 < height < preview.FIRST_HEIGHT  # trimmed to the content
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    plot = int((np.abs(pixels - BLUE).max(axis=2) < 40).sum())
    assert plot > 100, "roc.png, referenced by a relative path, is not in the screenshot"
    assert [p.name for p in png.parent.iterdir()] == ["report.png"]  # no temporary files left
