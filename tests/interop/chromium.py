"""Debian's chromium, headless, driven through chromium-driver by selenium (never a downloaded
driver), for the browser tests and the dashboard benchmark."""

import os

os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch a driver

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def start(width=1280, height=1000):
    """A new headless chromium with a window of `width` × `height`."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    return driver
