"""Preview the pull-request report as GitHub shows it: GitHub-flavoured markdown to a
standalone HTML page (cmark-gfm, GitHub's own parser), and a screenshot of that page in
headless Chromium. Chromium is kept off the network: the page only references local files."""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import cmarkgfm  # type: ignore[import-untyped]
from cmarkgfm.cmark import Options  # type: ignore[import-untyped]
from PIL import Image, ImageChops

from modelops.errors import InputError
from modelops.io import atomic_path, write_text

log = logging.getLogger(__name__)

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = (
    "install it (Debian/Ubuntu: `apt-get install chromium`) "
    "or set CHROMIUM to the browser's command or path"
)
FIRST_HEIGHT = 6000  # px; doubled while the page is taller than the window
MAX_HEIGHT = 16000  # taller windows get slow (24000 px took ~10 s against ~3 s)
MARGIN = 16  # px of white kept below the comment box when the screenshot is trimmed

# A GitHub comment, approximately: one bordered box, system font at 14 px.
CSS = """\
body { margin: 0; padding: 16px; background: #fff; color: #1f2328;
  font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica,
  Arial, "Liberation Sans", sans-serif; }
main { max-width: 900px; margin: 0 auto; padding: 16px 24px; box-sizing: border-box;
  border: 1px solid #d0d7de; border-radius: 6px; overflow-wrap: break-word; }
main > :first-child { margin-top: 0; }
main > :last-child { margin-bottom: 0; }
h1, h2, h3, h4, h5, h6 { margin: 24px 0 16px; font-weight: 600; line-height: 1.25; }
h1, h2 { padding-bottom: 0.3em; border-bottom: 1px solid #d8dee4; }
h1 { font-size: 2em; }
h2 { font-size: 1.5em; }
h3 { font-size: 1.25em; }
h4 { font-size: 1em; }
p, ul, ol, pre, table, details, blockquote { margin: 0 0 16px; }
ul, ol { padding-left: 2em; }
li + li { margin-top: 0.25em; }
a { color: #0969da; text-decoration: none; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono",
  monospace; font-size: 85%; }
code { padding: 0.2em 0.4em; border-radius: 6px; background: rgba(175, 184, 193, 0.2); }
pre { padding: 16px; overflow: auto; border-radius: 6px; background: #f6f8fa; }
pre code { padding: 0; font-size: 100%; background: none; }
table { display: block; width: max-content; max-width: 100%; overflow: auto;
  border-collapse: collapse; border-spacing: 0; }
th, td { padding: 6px 13px; border: 1px solid #d0d7de; }
th { font-weight: 600; }
tr { background: #fff; }
tr:nth-child(2n) { background: #f6f8fa; }
img { max-width: 100%; box-sizing: content-box; background: #fff; }
summary { cursor: pointer; }
details[open] > summary { margin-bottom: 8px; }
blockquote { padding: 0 1em; color: #59636e; border-left: 0.25em solid #d0d7de; }
hr { height: 0.25em; margin: 24px 0; padding: 0; border: 0; background: #d0d7de; }
"""


def _csp(css: str) -> str:
    """Nothing but local images and this page's own stylesheet: no scripts, no network,
    and no ``style`` attributes (GitHub strips those too)."""
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return f"default-src 'none'; img-src 'self' file: data:; style-src 'sha256-{digest}'"


def render_html(markdown: str, title: str, *, base: str | None = None) -> str:
    """A standalone HTML page of ``markdown`` rendered as GitHub renders comments.

    Raw HTML such as ``<details>`` is kept (GitHub keeps it); the tag filter of GFM still
    neutralises ``<script>``, ``<iframe>`` and the like. ``base`` sets ``<base href>`` for
    resolving relative image paths when the page is not written beside the images.
    """
    body = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    base_tag = f'<base href="{html.escape(base)}">\n' if base else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp(CSS)}">\n'
        f"{base_tag}"
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{CSS}</style>\n"
        f'</head>\n<body>\n<main class="comment">\n{body}</main>\n</body>\n</html>\n'
    )


class _ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources += [value for name, value in attrs if name == "src" and value]


def image_sources(page: str) -> list[str]:
    """The ``src`` of every ``<img>`` in an HTML page, in order."""
    parser = _ImageSources()
    parser.feed(page)
    parser.close()
    return parser.sources


def write_preview(markdown_path: Path, html_path: Path) -> Path:
    """Render the markdown file to ``html_path``; relative image paths keep resolving
    against the markdown's folder. Remote images are listed in a warning: the preview
    never loads them."""
    try:
        markdown = markdown_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{markdown_path} not found: run `make report` first") from None
    source_dir = markdown_path.resolve().parent
    base = None if html_path.resolve().parent == source_dir else source_dir.as_uri() + "/"
    page = render_html(markdown, markdown_path.name, base=base)
    sources = image_sources(page)
    remote = [src for src in sources if src.split(":", 1)[0] in ("http", "https")]
    if remote:
        log.warning("remote images are not loaded in the preview: %s", ", ".join(remote))
    missing = [s for s in sources if ":" not in s and not (source_dir / unquote(s)).is_file()]
    if missing:
        log.warning("images not found beside %s: %s", markdown_path, ", ".join(missing))
    return write_text(page, html_path)


def find_chromium() -> str:
    """The Chromium command: $CHROMIUM if set, else the first of BROWSERS on PATH."""
    override = os.environ.get("CHROMIUM")
    if override:
        found = shutil.which(override)
        if found is None:
            raise InputError(f"CHROMIUM={override!r} is not an executable; {INSTALL_HINT}")
        return found
    for name in BROWSERS:
        found = shutil.which(name)
        if found is not None:
            return found
    raise InputError(f"no Chromium found (looked for {', '.join(BROWSERS)}); {INSTALL_HINT}")


def chromium_command(
    browser: str, url: str, png: Path, width: int, height: int, profile: Path
) -> list[str]:
    """Headless Chromium that writes one screenshot of ``url`` and cannot reach a network."""
    return [
        browser,
        "--headless",
        "--no-sandbox",  # root in containers and CI; the page runs no scripts (CSP)
        "--disable-gpu",
        "--disable-dev-shm-usage",  # small /dev/shm in Docker would crash the renderer
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--mute-audio",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",  # PNG pixels = CSS pixels
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no host name resolves
        "--proxy-server=http://127.0.0.1:9",  # IP addresses too: via a closed local port
        "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={profile}",  # a throwaway profile, nothing written to $HOME
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        url,
    ]


def _run(command: list[str], timeout: float) -> None:
    """Run Chromium in its own process group, so a timeout kills its helpers as well."""
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise InputError(f"Chromium did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise InputError(f"Chromium failed (exit {proc.returncode}):\n{tail}")


def _content_bottom(image: Image.Image) -> int:
    """One past the last row that is not white (0 for a blank image)."""
    white = Image.new("RGB", image.size, (255, 255, 255))
    box = ImageChops.difference(image.convert("RGB"), white).getbbox()
    return 0 if box is None else box[3]


def screenshot(html_path: Path, png_path: Path, width: int = 1000, timeout: float = 60.0) -> Path:
    """A PNG of the page, ``width`` px wide and as tall as its content.

    The page height is unknown beforehand, so the window starts tall and is doubled while
    the comment box runs off its bottom edge (up to MAX_HEIGHT); the white below the box
    is then trimmed.
    """
    if not html_path.is_file():
        raise InputError(f"{html_path} not found: write the preview first")
    browser = find_chromium()
    url = html_path.resolve().as_uri()
    height = FIRST_HEIGHT
    with tempfile.TemporaryDirectory(prefix="modelops-chromium-") as tmp:
        shot = Path(tmp) / "shot.png"
        while True:
            shot.unlink(missing_ok=True)
            _run(
                chromium_command(browser, url, shot, width, height, Path(tmp) / "profile"), timeout
            )
            if not shot.is_file():
                raise InputError(f"Chromium exited without writing a screenshot of {html_path}")
            with Image.open(shot) as image:
                image.load()
            bottom = _content_bottom(image)
            if bottom < image.height or height >= MAX_HEIGHT:
                break
            height = min(2 * height, MAX_HEIGHT)
    if bottom >= image.height:
        log.warning("the page is taller than %d px; the screenshot is cut", MAX_HEIGHT)
    trimmed = image.crop((0, 0, image.width, min(image.height, bottom + MARGIN)))
    with atomic_path(png_path) as out:
        trimmed.save(out, format="PNG")
    return png_path


def main(markdown_path: Path, html_path: Path, png_path: Path | None) -> None:
    """Write the HTML preview and, if ``png_path`` is given, its screenshot."""
    write_preview(markdown_path, html_path)
    log.info("wrote %s", html_path)
    if png_path is not None:
        start = time.perf_counter()
        screenshot(html_path, png_path)
        log.info("wrote %s (%.1f s)", png_path, time.perf_counter() - start)
