"""Drives a node's dashboard in a real browser (Debian's chromium, headless, through
chromium-driver and selenium) the way an operator would, and writes a screenshot of each page.

    python browser_dashboard.py <API URL> <API token> <one-time link> <screenshot folder> <app> <app port>

Steps: the dashboard sends a stranger to the login page; a wrong token is refused; the token
signs in; the catalog lists the app; clicking Install shows live progress up to `healthy` and
the app answers on its port; stop and start from the apps list; the app's page; the trust
policy form saves a minimum score; uninstall; sign out; the one-time link signs in once and
only once. Exits 0 when every step saw what an operator should see; otherwise prints the step
and exits 1.
"""

import os
import sys
import time
import urllib.request

import chromium
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


class Failed(Exception):
    pass


def app_answers(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


def main():
    api, token, link, shots, app, port = sys.argv[1:7]
    os.makedirs(shots, exist_ok=True)
    driver = chromium.start()
    shot = lambda name: driver.save_screenshot(os.path.join(shots, f"dashboard-{name}.png"))
    wait = lambda secs, what, check: WebDriverWait(driver, secs).until(lambda d: check(), message=what)

    def text(css):
        # A page that reloads under the lookup (after an action) reads as empty, then again.
        try:
            found = driver.find_elements(By.CSS_SELECTOR, css)
            return found[0].text if found else ""
        except StaleElementReferenceException:
            return ""

    def row_state():
        return text(f'tr[data-app="{app}"] .state')

    def click(css):
        driver.find_element(By.CSS_SELECTOR, css).click()

    def go(css, title):
        # Follows a link and waits for the page it leads to.
        click(css)
        wait(30, f"the {title} page", lambda: driver.title.startswith(title))

    # On loopback the dashboard lives on `localhost` (the one-time link names it); apps open on
    # 127.0.0.1, another host to the browser, so the session cookie never reaches them.
    api = link.split("/login")[0]
    try:
        # A stranger is sent to the login page, on the dashboard's own host name; a wrong token
        # is refused and opens nothing.
        driver.get(sys.argv[1] + "/")
        if driver.current_url != api + "/login":
            raise Failed(f"without a session / went to {driver.current_url}, not {api}/login")
        shot("login")
        driver.find_element(By.ID, "token").send_keys("0" * 64)
        click("form button[type=submit]")
        wait(20, "a wrong token to be refused with a message", lambda: "not this node's API token" in text("p.error"))
        driver.get(api + "/")
        if not driver.current_url.endswith("/login"):
            raise Failed("a wrong token opened the dashboard")

        # The token signs in.
        driver.find_element(By.ID, "token").send_keys(token)
        click("form button[type=submit]")
        wait(20, "the token to open the dashboard", lambda: text("h1") == "Installed apps")
        if "No app is installed yet" not in driver.page_source:
            raise Failed("a new node lists installed apps")
        cookie = driver.get_cookie("archy_session")
        if not cookie or not cookie.get("httpOnly") or cookie.get("sameSite") != "Strict":
            raise Failed(f"the session cookie is not HttpOnly and SameSite=Strict: {cookie}")
        shot("apps")

        # The catalog lists the app from the origin; Install shows progress up to healthy.
        go('a[href="/catalog"]', "Catalog")
        card = f'article.card[data-app="{app}"]'
        if not driver.find_elements(By.CSS_SELECTOR, card):
            raise Failed(f"the catalog does not list {app}")
        if "From Nostr" not in driver.page_source:
            raise Failed("the catalog has no Nostr section")
        shot("catalog")
        # The app mounts a host folder: the node's policy asks for it first.
        install = driver.find_element(By.CSS_SELECTOR, f'{card} button[data-op="install"]')
        grants = driver.find_elements(By.CSS_SELECTOR, f"{card} input[data-grant]")
        if len(grants) != 1 or install.is_enabled() or "host_path" not in grants[0].get_attribute("data-grant"):
            raise Failed("the catalog does not ask for the host folder's grant before installing")
        grants[0].click()
        if not install.is_enabled():
            raise Failed("ticking the grant does not enable the install")
        click(f'{card} button[data-op="install"]')
        wait(180, "the install to end", lambda: text("#progress-state") in ("install done",) or "failed" in text("#progress-state"))
        steps = [e.get_attribute("data-step") for e in driver.find_elements(By.CSS_SELECTOR, "#progress-steps li")]
        if text("#progress-state") != "install done":
            raise Failed(f"the install did not succeed: {text('#progress-state')} (steps {steps})")
        for wanted in ("fetch", "fetched", "load", "loaded", "create", "start", "health", "healthy", "done"):
            if wanted not in steps:
                raise Failed(f"the progress never showed `{wanted}` (steps {steps})")
        if steps.index("healthy") > steps.index("done"):
            raise Failed(f"healthy after done: {steps}")
        shot("progress")
        if not app_answers(port):
            raise Failed(f"{app} does not answer on port {port} after the install")
        # The app's own page (another host to the browser) is not sent the dashboard's session.
        driver.get(f"http://127.0.0.1:{port}/")
        if driver.get_cookies():
            raise Failed(f"the app's page sees cookies: {driver.get_cookies()}")
        driver.get(api + "/catalog")

        # Stop and start from the list of installed apps.
        go('a[href="/"]', "Apps")
        # The list keeps itself live: no reload needed to see the app turn healthy.
        wait(60, "the app to be shown healthy", lambda: row_state() == "healthy")
        opener = driver.find_elements(By.CSS_SELECTOR, f'tr[data-app="{app}"] a.button')
        if not opener or opener[0].get_attribute("href") != f"http://127.0.0.1:{port}/":
            raise Failed("the Open link does not lead to the app")
        click(f'tr[data-app="{app}"] button[data-op="stop"]')
        wait(60, "the app to stop", lambda: row_state() == "stopped")
        if app_answers(port):
            raise Failed(f"{app} still answers after stop")
        click(f'tr[data-app="{app}"] button[data-op="start"]')
        wait(60, "the app to run", lambda: row_state() in ("running", "healthy"))
        wait(30, "the app to answer", lambda: app_answers(port))

        # The app's page: containers, logs, purge guarded by typing the id.
        go(f'tr[data-app="{app}"] a[href="/apps/{app}"]', app)
        if driver.find_element(By.ID, "purge").is_enabled():
            raise Failed("purge is possible without typing the app id")
        driver.find_element(By.ID, "purge-confirm").send_keys(app)
        if not driver.find_element(By.ID, "purge").is_enabled():
            raise Failed("typing the app id does not enable purge")
        shot("app")

        # The trust policy: a score outside 0–100 is refused, 5 is saved.
        go('a[href="/trust"]', "Trust")
        score = driver.find_element(By.ID, "min_score")
        score.clear()
        score.send_keys("5")
        click("#policy button[type=submit]")
        wait(20, "the policy to be saved", lambda: text("#policy-result").startswith("Saved"))
        shot("trust")

        # Uninstall from the app's page.
        driver.get(f"{api}/apps/{app}")
        click('button[data-op="uninstall"]')
        wait(60, "the uninstall", lambda: "No app is installed yet" in driver.page_source)
        if app_answers(port):
            raise Failed(f"{app} still answers after uninstall")

        # A phone-sized window.
        driver.set_window_size(390, 844)
        driver.get(api + "/catalog")
        shot("phone")
        driver.set_window_size(1280, 1000)

        # Sign out; the one-time link signs in once, then never again.
        click("#logout")
        wait(20, "the sign-out", lambda: driver.current_url.endswith("/login"))
        driver.get(api + "/")
        if not driver.current_url.endswith("/login"):
            raise Failed("signed out, the dashboard still opens")
        driver.get(link)
        if driver.find_element(By.TAG_NAME, "h1").text != "Installed apps":
            raise Failed("the one-time link did not sign in")
        driver.delete_all_cookies()
        driver.get(link)
        if "used up or expired" not in text("p.error"):
            raise Failed("the one-time link worked twice")
    except Exception as e:  # noqa: BLE001 - every failure is reported with the page
        print(f"dashboard in the browser: {e}\n--- page source ---\n{driver.page_source[:4000]}", file=sys.stderr)
        driver.quit()
        sys.exit(1)
    driver.quit()
    print("dashboard: every step passed")


if __name__ == "__main__":
    main()
