"""The built site in a real headless Chromium, used as a person would: look, sort, filter, click.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (``.ci/run``
installs them); skipped with the reason when any is missing. Screenshots of each page kind go
to the test's tmp dir and, when set, to ``$CILBENCH_ARTIFACTS``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.leaderboard.build import build_site
from tests.record_factory import latency, make_record, with_hardware
from tests.test_aggregate import golden_records
from tests.test_site import EVIL_LABEL, EVIL_VALUE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000")  # fmt: skip

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver; .ci/run installs them)",
)
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="needs selenium (pip install selenium)"
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

GFLOPS_COLUMN = 8  # entry, strategy, framework, backbone, ACC, AIA, BWT, forgetting, GFLOPs
MHA = "aten._native_multi_head_attention.default"


def browser_records() -> list[dict]:
    """The golden records, an entry whose label and config try to inject markup, and one whose
    FLOP counter missed an op (a newer record, with a GPU latency too)."""
    evil_config = {"strategy": {"note": EVIL_VALUE}, "framework": {}, "training": {}}
    evil = [make_record(label=EVIL_LABEL, config=evil_config, seed=s, gflops=0.1) for s in (1, 2)]
    vit = [
        make_record(label="vit", seed=s, gflops=0.3, uncounted_ops=[MHA], param_bytes=304_000,
                    latencies=[latency(4.0, threads=2),
                               latency(0.4, device="cuda", device_name="NVIDIA H200",
                                       precision="bf16", threads=None)])
        for s in (1, 2)
    ]  # fmt: skip
    return golden_records() + evil + vit


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(browser_records(), tmp_path_factory.mktemp("site")).parent


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="cilbench-chromium-")
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver: Any, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    check_page(driver)


def check_page(driver: Any) -> None:
    """No console errors (CSP violations, failed loads, script errors) and every image loaded."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.src, i.complete && i.naturalWidth > 0])"
    )
    assert all(loaded for _, loaded in images), images
    # Nothing from a record ran or became markup: our one script, no handler attributes.
    assert driver.execute_script("return window.__pwned === undefined")
    assert driver.execute_script("return document.querySelectorAll('[onerror]').length") == 0
    scripts = driver.execute_script("return Array.from(document.scripts).map(s => s.src)")
    assert len(scripts) == 1 and scripts[0].endswith("leaderboard.js")


def screenshot(driver: Any, name: str, folder: Path) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(height + 100, 4000))
    targets = [folder / "screenshots"]
    if os.environ.get("CILBENCH_ARTIFACTS"):
        targets.append(Path(os.environ["CILBENCH_ARTIFACTS"]))
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(target / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def column(driver: Any, index: int, attribute: str | None = "data-value") -> list[Any]:
    """The visible rows' cells of one column: their sort values, or their text."""
    cells = driver.find_elements(
        By.CSS_SELECTOR, f"#leaderboard tbody tr:not([hidden]) td:nth-child({index + 1})"
    )
    if attribute is None:
        return [cell.text for cell in cells]
    return [float(cell.get_attribute(attribute)) for cell in cells]


def test_index_loads_cleanly_with_its_thumbnails(driver: Any, site: Path, tmp_path: Path) -> None:
    open_page(driver, site / "index.html")
    assert driver.find_elements(By.CSS_SELECTOR, "figure.thumb svg.task-front")
    screenshot(driver, "index", tmp_path)


def test_the_index_thumbnail_is_legible_at_1280_px(driver: Any, committed_site: Path) -> None:
    """Issue 18's measured defect: the thumbnail was the full figure scaled to 360 px, its
    text a few pixels tall. Drawn at the size it shows, its ticks read at 10 px or more, and
    its front points link to their entries."""
    driver.set_window_size(1280, 800)
    try:
        open_page(driver, committed_site / "index.html")
        sizes = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.thumb svg.task-front text'))"
            ".map(t => t.getBoundingClientRect().height)"
        )
        assert sizes and min(sizes) >= 10
        fronts = driver.find_elements(By.CSS_SELECTOR, "figure.thumb circle.front")
        assert fronts
        link = fronts[0].find_element(By.XPATH, "..").get_dom_attribute("href")
        assert link.startswith("entries/digits-5split-v")
    finally:
        driver.set_window_size(1400, 1000)


def test_the_task_slider_shows_the_front_after_the_chosen_task(driver, committed_site, tmp_path):
    page = next((committed_site / "suites").glob("digits-5split-v*.html"))
    open_page(driver, page)
    panels = driver.find_elements(By.CSS_SELECTOR, ".task-panel")
    assert len(panels) == 5 and [p.is_displayed() for p in panels] == [False] * 4 + [True]
    slider = driver.find_element(By.CSS_SELECTOR, "input.task-pick")
    driver.execute_script(
        "arguments[0].value = '2'; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    shown = [p for p in panels if p.is_displayed()]
    assert [p.get_attribute("data-task") for p in shown] == ["2"]
    assert shown[0].find_element(By.TAG_NAME, "figcaption").text.startswith("After task 2 of 5")
    assert driver.find_element(By.CSS_SELECTOR, ".task-shown").text == "2"
    screenshot(driver, "suite-task-front", tmp_path)


def test_headers_sort_and_the_filter_narrows(driver: Any, site: Path, tmp_path: Path) -> None:
    open_page(driver, site / "index.html")
    driver.find_element(By.LINK_TEXT, "digits-5split").click()
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("digits-5split-v1.html"))
    check_page(driver)
    headers = driver.find_elements(By.CSS_SELECTOR, "#leaderboard thead th button.sort")
    headers[GFLOPS_COLUMN].click()  # fewer GFLOPs is better: the first click puts them first
    ascending = column(driver, GFLOPS_COLUMN)
    assert ascending == sorted(ascending) and ascending[0] < ascending[-1]
    headers[GFLOPS_COLUMN].click()
    assert column(driver, GFLOPS_COLUMN) == sorted(ascending, reverse=True)
    headers[0].click()  # text columns sort alphabetically
    names = column(driver, 0, attribute=None)
    assert names == sorted(names, key=str.lower)

    total = len(column(driver, 0, attribute=None))
    box = driver.find_element(By.CSS_SELECTOR, "input.table-filter")
    box.send_keys("prepruning")  # the framework column is hidden; the filter reads every cell
    narrowed = column(driver, 0, attribute=None)
    assert narrowed == ["lwf+prepruning@0.4"] and total > 1
    status = driver.find_element(By.CSS_SELECTOR, ".filter-status").text
    assert status == f"1 of {total} entries"
    box.clear()
    box.send_keys(" ")  # clear() fires no input event; a keystroke does
    assert len(column(driver, 0, attribute=None)) == total
    screenshot(driver, "suite", tmp_path)


def test_an_entry_link_opens_its_page(driver: Any, site: Path, tmp_path: Path) -> None:
    open_page(driver, site / "suites" / "digits-5split-v1.html")
    driver.find_element(By.LINK_TEXT, "lwf+prepruning@0.4").click()
    WebDriverWait(driver, 10).until(lambda d: "/entries/" in d.current_url)
    check_page(driver)
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("lwf+prepruning@0.4")
    assert driver.find_elements(By.CSS_SELECTOR, "figure.curve svg polyline")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#heatmap td.num")) == 3
    assert "--set framework.ratio=0.4" in driver.find_element(By.ID, "reproduce").text
    screenshot(driver, "entry", tmp_path)


def test_markup_in_a_record_is_shown_as_text_never_run(driver: Any, site: Path) -> None:
    open_page(driver, site / "suites" / "digits-5split-v1.html")
    links = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody td:first-child a")
    evil = [link for link in links if link.text == EVIL_LABEL]
    assert len(evil) == 1
    evil[0].click()
    WebDriverWait(driver, 10).until(lambda d: "/entries/" in d.current_url)
    check_page(driver)
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith(EVIL_LABEL)
    assert EVIL_VALUE in driver.find_element(By.ID, "config-table").text


def test_an_entry_whose_flops_missed_an_op_is_flagged(
    driver: Any, site: Path, tmp_path: Path
) -> None:
    open_page(driver, site / "suites" / "digits-5split-v1.html")
    flags = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody .flag")
    assert len(flags) == 1 and flags[0].is_displayed()
    assert flags[0].text == "⚠ uncounted ops" and MHA in flags[0].get_attribute("title")
    row = flags[0].find_element(By.XPATH, "ancestor::tr")
    assert row.find_element(By.CSS_SELECTOR, "td:first-child").text == "vit"
    cell = flags[0].find_element(By.XPATH, "ancestor::td")
    assert cell == row.find_elements(By.TAG_NAME, "td")[GFLOPS_COLUMN]
    colour = driver.execute_script("return getComputedStyle(arguments[0]).color", flags[0])
    assert colour == "rgb(180, 35, 24)"  # the warning red, not the text's ink
    # Two latency settings: both columns are optional, named in the column picker.
    picks = driver.find_element(By.CSS_SELECTOR, "details.column-picker").get_attribute(
        "textContent"
    )
    assert "latency ms NVIDIA H200 bf16 b1" in picks and "latency ms CPU b1 (2 thr)" in picks
    screenshot(driver, "suite-flagged", tmp_path)
    row.find_element(By.LINK_TEXT, "vit").click()
    WebDriverWait(driver, 10).until(lambda d: "/entries/" in d.current_url)
    check_page(driver)
    warning = driver.find_element(By.ID, "uncounted-ops")
    assert warning.is_displayed() and MHA in warning.text
    screenshot(driver, "entry-flagged", tmp_path)


COMMITTED = Path(__file__).resolve().parents[1] / "results" / "digits-5split"


@pytest.fixture(scope="module")
def committed_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.records.store import load_records_leniently

    if not COMMITTED.is_dir():
        pytest.skip("no committed digits-5split records")
    loaded = load_records_leniently(COMMITTED)
    out = tmp_path_factory.mktemp("committed")
    return build_site(loaded.records, out, sources=loaded.sources).parent


def test_the_committed_suite_table_fits_1280_px_in_rows_of_two_lines(driver, committed_site):
    """Issue 18's measured defects: the table was 2018 px in a 1242 px box and rows 121 px
    tall. With the optional columns hidden it fits, and no row is taller than two lines."""
    driver.set_window_size(1280, 800)
    try:
        page = next((committed_site / "suites").glob("digits-5split-v*.html"))
        open_page(driver, page)
        table_width, box_width, line = driver.execute_script(
            "var t = document.getElementById('leaderboard');"
            "return [t.scrollWidth, t.parentNode.clientWidth,"
            " parseFloat(getComputedStyle(t.tBodies[0].rows[0].cells[1]).lineHeight)];"
        )
        assert table_width <= box_width
        heights = driver.execute_script(
            "return Array.from(document.querySelectorAll('#leaderboard tbody tr'))"
            ".map(r => r.getBoundingClientRect().height)"
        )
        assert max(heights) <= 2 * line + 12  # two lines and the cell's padding
    finally:
        driver.set_window_size(1400, 1000)


def test_pages_do_not_overflow_a_390_px_phone(driver, committed_site):
    driver.set_window_size(390, 844)
    try:
        for page in (committed_site / "index.html",
                     next((committed_site / "suites").glob("digits-5split-v*.html"))):  # fmt: skip
            open_page(driver, page)
            width, screen = driver.execute_script(
                "var d = document.documentElement; return [d.scrollWidth, d.clientWidth]"
            )
            assert width <= screen, page.name
    finally:
        driver.set_window_size(1400, 1000)


def test_the_column_picker_shows_a_hidden_column(driver, site):
    open_page(driver, site / "suites" / "digits-5split-v1.html")
    header = driver.find_element(
        By.XPATH, "//table[@id='leaderboard']//th[contains(., 'forgetting')]"
    )
    assert not header.is_displayed()
    driver.find_element(By.CSS_SELECTOR, "details.column-picker summary").click()
    box = driver.find_element(
        By.XPATH,
        "//details[contains(@class, 'column-picker')]//label[contains(., 'forgetting')]/input",
    )
    assert not box.is_selected()
    box.click()
    assert header.is_displayed()
    # entry, strategy, framework, backbone, ACC, AIA, BWT, then forgetting: the 8th cell.
    cells = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr td:nth-child(8)")
    assert cells and all(cell.is_displayed() for cell in cells)


def test_two_chosen_entries_open_side_by_side(driver: Any, site: Path) -> None:
    open_page(driver, site / "suites" / "digits-5split-v1.html")
    link = driver.find_element(By.CSS_SELECTOR, "a.compare-link")
    assert not link.is_displayed()  # nothing chosen yet
    rows = driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
    chosen = [r for r in rows if r.find_element(By.CSS_SELECTOR, "td a").text in
              ("lwf", "lwf+kd")]  # fmt: skip
    for row in chosen:
        row.find_element(By.CSS_SELECTOR, "input.pick").click()
    assert link.is_displayed() and link.text == "compare 2 chosen"
    link.click()
    WebDriverWait(driver, 10).until(lambda d: "-compare.html#" in d.current_url)
    check_page(driver)
    shown = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#compare thead th")
             if h.is_displayed()]  # fmt: skip
    assert [name.split(" provisional")[0] for name in shown] == ["figure", "lwf", "lwf+kd"]
    acc = driver.find_element(By.XPATH, "//table[@id='compare']//tr[th[contains(., 'ACC')]]")
    values = [td.text for td in acc.find_elements(By.TAG_NAME, "td") if td.is_displayed()]
    assert values == ["73.50 ± 4.95", "55.00"]  # the suite table's figures, side by side
    status = driver.find_element(By.CSS_SELECTOR, ".compare-status").text
    assert status == f"2 of {len(rows)} entries chosen."


def test_entries_filter_by_where_they_ran(driver: Any, tmp_path: Path) -> None:
    """Where an entry ran (device, processor, threads, precision) is in its row when the
    suite's trials ran on more than one kind of hardware, and the filter narrows by it."""
    gpu = [with_hardware(make_record(label="lwf", seed=s), processor="Intel Xeon",
                         torch_threads=4, device_name="NVIDIA H200", precision="bf16")
           for s in (1, 2)]  # fmt: skip
    cpu = [with_hardware(make_record(label="icarl", seed=s, gflops=0.2),
                         processor="AMD EPYC 9654", torch_threads=8) for s in (1, 2)]  # fmt: skip
    site = build_site(gpu + cpu, tmp_path / "site").parent
    open_page(driver, site / "suites" / "digits-5split-v1.html")
    box = driver.find_element(By.CSS_SELECTOR, "input.table-filter")
    box.send_keys("H200")
    assert column(driver, 0, attribute=None) == ["lwf"]
    box.clear()
    box.send_keys("EPYC 9654")
    assert column(driver, 0, attribute=None) == ["icarl"]
