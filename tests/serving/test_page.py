"""The web page at `/`, end to end in headless Chromium (Debian's chromium and chromium-driver,
which `.ci/run` installs): load, pick a user, buy an item, see the list change; a new anonymous
session starts from popularity and its first view changes that."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import KEY, free_port, start_server

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run)"
)
WAIT = 30  # seconds for the page to answer a click (two CPUs shared with the rest of the suite)


@pytest.fixture
def server(shop: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = start_server(shop / "models" / "als", tmp_path / "events.db", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)  # type: ignore[arg-type]
    try:
        yield driver
    finally:
        driver.quit()


def _items(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#recs li")
    return [li.get_attribute("data-item") for li in rows]


def _generation(driver) -> int:
    value = driver.find_element("id", "recs").get_attribute("data-generation")
    return int(value or 0)


def _after(driver, generation: int) -> None:
    """Wait until the list was redrawn after `generation`."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT).until(lambda d: _generation(d) > generation)


def test_pick_a_user_buy_and_the_list_changes(server: str, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(server + "/")
    _after(driver, 0)
    users = httpx.get(server + "/v1/users?limit=50").json()["users"]
    picked = users[3]
    generation = _generation(driver)
    Select(driver.find_element(By.ID, "user-select")).select_by_value(picked)
    _after(driver, generation)
    before = _items(driver)
    assert len(before) == 10
    assert before == [
        i["item_id"]
        for i in httpx.get(f"{server}/v1/users/{picked}/recommendations?k=10").json()["items"]
    ]
    assert "from als@" in driver.find_element(By.ID, "source").text

    driver.find_element(By.ID, "api-key").send_keys(KEY)
    generation = _generation(driver)
    bought = before[0]
    driver.find_element(By.CSS_SELECTOR, f'#recs li[data-item="{bought}"] button.buy').click()
    _after(driver, generation)
    after = _items(driver)
    assert after != before and bought not in after
    history = driver.find_element(By.ID, "history").text
    assert bought in history and "buy" in history
    stored = httpx.get(f"{server}/v1/users/{picked}/history").json()["items"]
    assert stored[-1]["item_id"] == bought and stored[-1]["event"] == "buy"
    shot = tmp_path / "page.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    generation = _generation(driver)
    driver.find_element(By.ID, "new-session").click()
    _after(driver, generation)
    assert driver.find_element(By.ID, "source").text == "from popularity"
    first = _items(driver)
    generation = _generation(driver)
    driver.find_element(By.CSS_SELECTOR, f'#recs li[data-item="{first[2]}"] button.view').click()
    _after(driver, generation)
    assert "from als@" in driver.find_element(By.ID, "source").text
    assert _items(driver) != first and first[2] not in _items(driver)
