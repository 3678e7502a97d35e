"""Debian's headless Chromium, driven by Selenium through its chromedriver: the browser tests' one browser.

It fetches nothing on its own (no updates, no sync, no background requests), and its console log is readable, so a
test can require a page to load without console errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skips import require_module, skip_or_fail

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@contextmanager
def headless_chromium(profile: Path) -> Iterator[Any]:
    """A started Chromium with its user data in ``profile``; skipped (failed in CI) when it is not installed."""
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(binary).is_file():
            skip_or_fail(f"{binary} not installed (apt-get install {package}): the browser test needs it")
    webdriver = require_module("selenium.webdriver", "dev")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[dict[str, Any]]:
    """The console's errors (level SEVERE) since the last call: script errors, resources that failed to load."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
