"""The reports in a real browser: Debian's headless Chromium, driven by Selenium through its chromedriver.

Checks what only a browser can tell: no console errors, every picture decodes,
and the runs table sorts when a column header is clicked. Screenshots of both
pages go to ``$CIFARLAB_SCREENSHOTS`` when set (those in ``docs/``, shown in the README and on the reports page,
come from there), else to the test's temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import synthetic
from chromium import console_errors, headless_chromium
from report_fixtures import make_run, make_sweep

from cifarlab.reporting.html import report

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium that fetches nothing on its own, with its console log readable."""
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """A run's and a sweep's report written to disk, as a user opens them."""
    root = tmp_path_factory.mktemp("reports")
    data = synthetic.make_imagefolder(root / "data", 6, 10)
    run = make_run(root / "run", data)
    sweep = make_sweep(root / "sweep", data)
    for trial in sorted((sweep / "trials").iterdir()):
        report(trial).save()
    return {"run": report(run.path).save(), "sweep": report(sweep).save()}


def _open(driver, page: Path) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"


def _check_loaded(driver) -> None:
    errors = console_errors(driver)
    assert errors == [], f"console errors: {errors}"
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
    assert images, "no images on the page"
    broken = [alt for alt, complete, width in images if not complete or width == 0]
    assert broken == [], f"images that did not load: {broken}"


def _screenshot(driver, name: str, folder: Path) -> Path:
    """The whole page as a PNG (the window is made as tall as the page)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height, 12000))
    target = Path(os.environ.get("CIFARLAB_SCREENSHOTS") or folder) / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(target))
    driver.set_window_size(1280, 900)
    return target


def test_run_report_loads_in_chromium_without_errors(browser, pages, tmp_path):
    _open(browser, pages["run"])
    _check_loaded(browser)
    thumbs = browser.execute_script("return document.querySelectorAll('img.thumb').length")
    assert thumbs == 24
    assert _screenshot(browser, "report-run", tmp_path).stat().st_size > 10_000


def test_sweep_report_sorts_its_runs_table_by_the_clicked_column(browser, pages, tmp_path):
    from selenium.webdriver.common.by import By

    _open(browser, pages["sweep"])
    _check_loaded(browser)
    table = browser.find_element(By.ID, "runs-table")
    headers = [th.text.strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    lr, label = headers.index("lr"), headers.index("label")

    def column(index: int) -> list[str]:
        return [tr.find_elements(By.TAG_NAME, "td")[index].text for tr in table.find_elements(By.CSS_SELECTOR,
                                                                                              "tbody tr")]

    def lrs() -> list[float]:
        return [float(v) for v in column(lr)]

    before = column(label)
    header = table.find_elements(By.CSS_SELECTOR, "thead th")[lr]
    header.click()
    assert lrs() == sorted(lrs()) and len(set(lrs())) == 2
    assert header.get_attribute("data-dir") == "asc"
    header.click()
    assert lrs() == sorted(lrs(), reverse=True)
    table.find_elements(By.CSS_SELECTOR, "thead th")[label].click()
    assert column(label) == sorted(before)  # text columns sort as text
    _check_loaded(browser)  # sorting logged no error either
    assert _screenshot(browser, "report-sweep", tmp_path).stat().st_size > 10_000


def test_links_from_the_sweep_to_its_trials_reports_open(browser, pages):
    from selenium.webdriver.common.by import By

    _open(browser, pages["sweep"])
    link = browser.find_element(By.ID, "runs-table").find_element(By.LINK_TEXT, "report")
    link.click()
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Run ")
    _check_loaded(browser)


# The sort script on every kind of column the reports hold: (label, params, val acc, status), as a report's
# cells carry them: numbers and percentages sort by their data-sort value, not their text ("20,000" before
# "3,000", "50.00%" before "9.50%" as text); None is a missing value ("-").
SORT_ROWS = [("b", 20000, 0.5, "pruned"), ("a", 5, None, "completed"), ("D", 3000, 0.095, None),
             ("c", None, 0.9, "diverged")]


@pytest.fixture(scope="module")
def sort_page(tmp_path_factory) -> Path:
    from cifarlab.formatting import cell, html_table
    from cifarlab.reporting.html.page import document, fragment, section

    rows = [[label, cell(params, "-" if params is None else f"{params:,}"),
             cell(acc, "-" if acc is None else f"{acc:.2%}"), "-" if status is None else status]
            for label, params, acc, status in SORT_ROWS]
    html = html_table(["label", "params", "val acc", "status"], rows, sortable=True, table_id="t")
    page = tmp_path_factory.mktemp("sort") / "sort.html"
    page.write_text(document("sort", fragment("sort", "", [section("Table", html)])))
    return page


def _expected(column: int, reverse: bool) -> list[str]:
    """The labels in Python's order of the column's values, missing ones last either way."""
    present = [r for r in SORT_ROWS if r[column] is not None]
    missing = [r[0] for r in SORT_ROWS if r[column] is None]
    return [r[0] for r in sorted(present, key=lambda r: r[column], reverse=reverse)] + missing


@pytest.mark.parametrize(("name", "column"), [("label", 0), ("params", 1), ("val acc", 2), ("status", 3)])
def test_the_sort_script_orders_numbers_percentages_text_and_puts_missing_values_last(browser, sort_page, name,
                                                                                      column):
    from selenium.webdriver.common.by import By

    _open(browser, sort_page)
    table = browser.find_element(By.ID, "t")
    header = table.find_elements(By.CSS_SELECTOR, "thead th")[column]

    def labels() -> list[str]:
        return [tr.find_element(By.TAG_NAME, "td").text for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

    header.click()
    assert (header.get_attribute("data-dir"), labels()) == ("asc", _expected(column, reverse=False))
    header.click()
    assert (header.get_attribute("data-dir"), labels()) == ("desc", _expected(column, reverse=True))
    assert console_errors(browser) == []
