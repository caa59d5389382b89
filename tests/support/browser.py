"""Headless Chromium driven by Selenium 4 through Debian's chromedriver (scripts/system-deps.sh installs
both), for the portal's browser tests. A missing browser or driver fails the test with how to install it."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,900")
SCREENSHOTS_ENV = "QTSP_SCREENSHOTS"  # a directory (e.g. docs/portal): the screenshots are copied there


def _require() -> None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        assert os.access(path, os.X_OK), f"{path} missing: apt-get install {package} (or `make system-test`)"


@contextlib.contextmanager
def chromium(profile: Path, downloads: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its own --user-data-dir), downloads saved into ``downloads`` unasked."""
    _require()
    downloads.mkdir(parents=True, exist_ok=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages: CSP violations among them
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False,
                                              "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # Headless Chromium saves downloads only where it is told to (the preference alone is not always enough).
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def downloaded(directory: Path, suffix: str, timeout: float = 30) -> Path:
    """The one finished download ending in ``suffix`` (Chromium writes .crdownload until it is done)."""
    def done() -> Path | None:
        found = [p for p in directory.iterdir() if p.name.endswith(suffix)]
        partial = [p for p in directory.iterdir() if p.name.endswith(".crdownload")]
        return found[0] if len(found) == 1 and not partial else None
    return Path(wait_for(done, timeout, f"a {suffix} download in {directory}"))


class Screenshots:
    """Screenshots always go to a temporary directory (so the code that takes them runs in CI too) and are
    copied to $QTSP_SCREENSHOTS only when it is set: CI never dirties the tree."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.target = os.environ.get(SCREENSHOTS_ENV)
        self.taken: list[Path] = []

    def take(self, driver: Any, name: str) -> Path:
        path = self.tmp / f"{name}.png"
        width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(int(full) + 140, 400), 4000))  # the whole page, not the first screen
        driver.save_screenshot(str(path))
        driver.set_window_size(width, height)
        assert path.stat().st_size > 1000, f"screenshot {name} is empty"
        self.taken.append(path)
        return path

    def publish(self) -> None:
        if not self.target:
            return
        target = Path(self.target)
        target.mkdir(parents=True, exist_ok=True)
        for path in self.taken:
            shutil.copyfile(path, target / path.name)


def csp_violations(driver: Any) -> list[str]:
    """What the console said about the Content-Security-Policy since the last call (each call drains it)."""
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]
