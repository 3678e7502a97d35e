"""The documentation site in a real browser: built with ``mkdocs build --strict`` as ``make docs`` builds it, served
on a loopback port, opened in headless Chromium.

The home page, the API reference and a page of pictures must load without a console error (a script that throws,
a resource that does not load), and the theme's search, which runs in a web worker, must answer a query. Served
over HTTP rather than opened from disk: the search worker and its index do not load from ``file://`` URLs.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from chromium import console_errors, headless_chromium
from skips import require_module

import cifarlab

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built from this checkout into a temporary folder."""
    require_module("mkdocs", "docs")
    out = tmp_path_factory.mktemp("site")
    # cwd: the snippets in the pages are found relative to the repository root, as make docs runs it. Not --quiet:
    # it drops the warnings before --strict counts them, and a broken link would pass.
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(REPO / "mkdocs.yml"), "-d", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}"
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # one line per request would bury pytest's output


@pytest.fixture(scope="module")
def served(site):
    """The site's base URL on a loopback HTTP server, for the module's tests."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def _open(driver, url: str) -> None:
    console_errors(driver)  # drop what earlier pages logged
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"


def _images(driver) -> list[tuple[str, bool, int]]:
    return driver.execute_script("return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")


def test_the_home_page_loads_without_console_errors_and_its_search_answers(browser, served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, served)
    assert browser.title.startswith("cifarlab")
    assert "cifarlab.load_dataset(path)" in browser.find_element(By.TAG_NAME, "article").text  # the workflow table
    browser.find_element(By.CSS_SELECTOR, "label.md-search__icon, .md-search__input").click()
    browser.find_element(By.CSS_SELECTOR, ".md-search__input").send_keys("seedlike")
    results = WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
    assert results, "the search found nothing for 'seedlike'"
    assert console_errors(browser) == []


def test_the_api_reference_loads_without_console_errors_with_every_public_name(browser, served):
    from selenium.webdriver.common.by import By

    _open(browser, served + "api/")
    # a heading's first word is its name; labels such as "dataclass" follow it
    headings = {h.text.split()[0] for h in browser.find_elements(By.CSS_SELECTOR, "article h2") if h.text.strip()}
    assert {f"cifarlab.{name}" for name in cifarlab.__all__} <= headings
    assert console_errors(browser) == []


def test_a_page_of_pictures_loads_every_picture(browser, served):
    _open(browser, served + "reports/")
    images = _images(browser)
    assert len(images) >= 5
    assert [alt for alt, complete, width in images if not complete or width == 0] == []
    assert console_errors(browser) == []
