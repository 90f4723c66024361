"""`mockcore screenshot FILE`: the README's picture of the dashboard, taken by the project itself.

Starts a fleet of its own (prod and backup on the README's ports 8008 and 8010, the activation server on 8009,
or free ports when those are taken), opens `/_mock/ui` in headless Chromium (Debian's package, driven by
Playwright: no browser download), clicks through an online failover (activate prod, register backup online,
nominate it, scan on the new production) and saves a full-page PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1440, "height": 1000}
TIMEOUT_MS = 15_000
README_PORTS = {"prod": 8008, "backup": 8010}
README_ACTIVATION_PORT = 8009


class ScreenshotError(Exception):
    """The screenshot cannot be taken; the message says why."""


def _fleet() -> Any:
    from mockcore.inprocess import DEFAULT_KEYS, MockFleet

    fixed = MockFleet(
        instances=("prod", "backup"), keys=DEFAULT_KEYS, ports=README_PORTS, activation_port=README_ACTIVATION_PORT
    )
    try:
        return fixed.start()
    except OSError:  # a port is taken: any free ones will do
        return MockFleet(instances=("prod", "backup"), keys=DEFAULT_KEYS).start()


def take(output: Path, chromium: Path) -> None:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        raise ScreenshotError(
            "the screenshot needs Playwright (python3 -m pip install -e '.[test]'); it drives --chromium, "
            "no browser is downloaded"
        ) from exc
    if not output.parent.is_dir():
        raise ScreenshotError(f"{output.parent}: no such directory")
    mock = _fleet()
    try:
        mock.clock.freeze()  # the clock on the picture stands still while it is taken
        with sync_playwright() as playwright:
            try:
                browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
            except PlaywrightError as exc:
                raise ScreenshotError(f"cannot start {chromium}: {exc.message.splitlines()[0]}") from exc
            try:
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(mock.urls["prod"] + "/_mock/ui")
                prod, backup = page.locator("#instance-prod"), page.locator("#instance-backup")
                expect(prod.locator(".field-state")).to_have_text("unlicensed")
                for card, operation, field, wanted in (
                    (prod, "activate", prod, "active"),
                    (backup, "register-online", backup, "backup-online"),
                    (backup, "nominate", backup, "active"),
                ):
                    card.locator(f'button[data-op="{operation}"]').click()
                    expect(field.locator(".field-state")).to_have_text(wanted, timeout=TIMEOUT_MS)
                expect(prod.locator(".field-detail")).to_contain_text("reactivate")
                backup.locator('button[data-op="scan"]').click()
                expect(page.locator("#exchanges .response .line")).to_have_text("← 200 OK")
                expect(page.locator("#journal tbody tr")).to_have_count(4)
                page.screenshot(path=str(output), full_page=True)
            finally:
                browser.close()
    finally:
        mock.stop()
