"""Drives the origin's marketplace in a real browser (Debian's chromium, headless, through
chromium-driver and selenium) the way a visitor would, and writes a screenshot of each page.

    python browser_market.py <marketplace URL> <screenshot folder> <expected app count> <publisher DID> \
        <Nostr app title>

Exits 0 when every step saw what a visitor should see; otherwise prints the step and exits 1.
"""

import os
import sys

import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def fail(step, driver):
    print(f"marketplace in the browser: {step}\n--- page source ---\n{driver.page_source[:4000]}", file=sys.stderr)
    driver.quit()
    sys.exit(1)


def main():
    url, shots, expected, did, nostr_title = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    os.makedirs(shots, exist_ok=True)
    driver = chromium.start()
    try:
        driver.get(url + "/")
        cards = driver.find_elements(By.CSS_SELECTOR, "li.card:not(.nostr)")
        if len(cards) != expected:
            fail(f"the list shows {len(cards)} apps of the origin, not {expected}", driver)
        # Each sample's icon comes from the catalog (this origin), and the browser could draw it.
        icons = driver.find_elements(By.CSS_SELECTOR, "li.card:not(.nostr) img.icon")
        drawn = [driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in icons]
        if len(icons) != expected or not all(drawn):
            fail(f"{len(icons)} icons, drawn: {drawn}", driver)
        if any(not i.get_attribute("src").startswith(url + "/icons/") for i in icons):
            fail("an icon is not served by this origin", driver)
        # The Nostr app is listed apart, with its trust score and why.
        nostr = driver.find_elements(By.CSS_SELECTOR, "section.nostr li.card.nostr")
        if len(nostr) != 1 or nostr_title not in nostr[0].text or "Trust score" not in nostr[0].text:
            fail(f"the Nostr section does not show `{nostr_title}` with its trust score", driver)
        driver.save_screenshot(os.path.join(shots, "marketplace-list.png"))

        # Search the way a visitor does: type into the search box and press the button.
        box = driver.find_element(By.ID, "q")
        box.send_keys("wiki")
        driver.find_element(By.CSS_SELECTOR, "form.search button").click()
        WebDriverWait(driver, 30).until(lambda d: "q=wiki" in d.current_url, message="the search to load")
        titles = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "li.card h2")]
        if len(titles) != 1 or "Wiki" not in titles[0]:
            fail(f"searching `wiki` found {titles}", driver)
        if "q=wiki" not in driver.current_url:
            fail(f"the search is not in the URL: {driver.current_url}", driver)
        driver.save_screenshot(os.path.join(shots, "marketplace-search.png"))

        driver.find_element(By.CSS_SELECTOR, "li.card h2 a").click()
        WebDriverWait(driver, 30).until(lambda d: "/apps/" in d.current_url, message="the app page to load")
        headings = [e.text for e in driver.find_elements(By.TAG_NAME, "h2")]
        for wanted in ("Permissions", "What a node creates", "Signature", "Versions"):
            if wanted not in headings:
                fail(f"the app page has no `{wanted}` section (sections: {headings})", driver)
        if did not in driver.find_element(By.CSS_SELECTOR, "section.signature").text:
            fail("the app page does not show the publisher DID", driver)
        if "archy-node install" not in driver.find_element(By.CSS_SELECTOR, "section.install").text:
            fail("the app page does not say how to install", driver)
        driver.save_screenshot(os.path.join(shots, "marketplace-app.png"))

        # A phone-sized window still shows the list, one column.
        driver.set_window_size(390, 844)
        driver.get(url + "/")
        driver.save_screenshot(os.path.join(shots, "marketplace-phone.png"))
        first = driver.find_elements(By.CSS_SELECTOR, "li.card")[0]
        if first.size["width"] > 390:
            fail(f"a card is {first.size['width']} px wide in a 390 px window", driver)
    finally:
        driver.quit()
    print("marketplace in the browser: list, search, app page and phone layout as expected")


main()
