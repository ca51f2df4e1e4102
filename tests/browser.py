"""Headless Chromium for the report page's tests and its benchmark, driven by Playwright.

Playwright (playwright-python) drives the Debian `chromium` package through
`executable_path`: its own browser download is never used (`playwright install` cannot
reach its CDN from here). It was chosen over Selenium because the checks the page needs
are first-class events there — every console message, page error and network request of
the page, including ones the page never completes — with no chromedriver whose version
must match the browser, and keyboard input, screenshots and waiting on a selector come
with it. The browser runs closed off: no sandbox (we are root), no background
networking, component updates, sync or QUIC, in a fresh profile folder; otherwise
Chromium reaches for Google's servers, the closed network refuses, and the refusals can
look like the page's own errors.
"""

from __future__ import annotations

import contextlib
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, sync_playwright

VIEWPORT = {"width": 1280, "height": 800}
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]
WHY_MISSING = ("no Chromium on this machine: `apt-get install -y chromium` (the Debian "
               "package; .ci/run installs it when missing)")


def chromium() -> str | None:
    """The system Chromium's path, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def browser(profile: Path) -> Iterator[BrowserContext]:
    """Chromium with a fresh profile in `profile`, a 1280×800 viewport."""
    executable = chromium()
    if executable is None:
        raise RuntimeError(WHY_MISSING)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=FLAGS,
            viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()


@dataclass
class Watched:
    """A page and everything it said or asked for since it was opened."""

    page: Page
    console: list[ConsoleMessage] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return [f"console.{m.type}: {m.text}" for m in self.console
                if m.type in ("error", "warning")] + [f"page error: {e}" for e in self.page_errors]


def open_file(context: BrowserContext, path: Path, *, ready: bool = True,
              javascript: bool = True, timeout_ms: float = 30_000) -> Watched:
    """Open a local file in a new page, recording console, errors and requests; wait for
    the report's script to say it is ready (`<html data-ready>`) unless `ready` is False.
    `javascript=False`: this page runs no script (Chromium's own switch, through the
    DevTools protocol, so that one browser serves pages with and without)."""
    page = context.new_page()
    if not javascript:
        context.new_cdp_session(page).send("Emulation.setScriptExecutionDisabled",
                                           {"value": True})
    watched = Watched(page)
    page.on("console", lambda message: watched.console.append(message))
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    page.on("request", lambda request: watched.requests.append(_url(request)))
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
    if ready:
        page.wait_for_selector("html[data-ready]", state="attached", timeout=timeout_ms)
    return watched


def _url(request: Request) -> str:
    return request.url


def screenshot(watched: Watched, path: Path) -> Path:
    """The page's first screen as a PNG, at the 1280×800 viewport."""
    watched.page.screenshot(path=path)
    assert struct.unpack(">II", path.read_bytes()[16:24]) == (1280, 800)   # PNG IHDR
    return path


def counts_on_screen(page: Any, scope: str) -> dict[str, int]:
    """The report's counts cells under `scope`: {attribute: number shown}."""
    cells = page.locator(f"{scope} td[data-count]")
    return {cells.nth(i).get_attribute("data-count"): int(cells.nth(i).inner_text()
                                                          .replace(",", ""))
            for i in range(cells.count())}
