"""Dashboard first paint in a real browser (Debian's chromium, headless, through selenium).

    python bench/dashboard_paint.py <one-time login link> [loads per page]

Signs in with the link, then loads each page of the dashboard N times (default 10) and prints,
per page, the medians of: the server's time to the first byte (the Navigation Timing API's
`responseStart - requestStart`), the first contentful paint (the Paint Timing API), and the
bytes of the page and of everything it loaded (decoded body sizes). Every load is a fresh
navigation; the stylesheet and script may come from the browser's cache after the first load,
as they do for an operator.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
import chromium  # noqa: E402

link = sys.argv[1]
loads = int(sys.argv[2]) if len(sys.argv) > 2 else 10
base = link.split("/login")[0]
driver = chromium.start()
driver.get(link)
if "/login" in driver.current_url:
    sys.exit("the link did not sign in (used or expired?)")
pages = ["/", "/catalog", "/trust"]
app = driver.execute_script("const a = document.querySelector('tr[data-app]'); return a && a.dataset.app;")
if app:
    pages.insert(2, f"/apps/{app}")
print(f"dashboard first paint, {loads} loads per page (medians), {base}")
for path in pages:
    server, paint, html, total = [], [], [], []
    for _ in range(loads):
        driver.get(base + path)
        # The paint entry is reported once the browser painted: wait for it (buffered observer).
        timing = driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            const report = (fcp) => {
              const nav = performance.getEntriesByType('navigation')[0];
              const res = performance.getEntriesByType('resource');
              done([nav.responseStart - nav.requestStart, fcp, nav.decodedBodySize,
                    nav.decodedBodySize + res.reduce((s, r) => s + r.decodedBodySize, 0)]);
            };
            new PerformanceObserver((list) => {
              const fcp = list.getEntriesByName('first-contentful-paint')[0];
              if (fcp) report(fcp.startTime);
            }).observe({ type: 'paint', buffered: true });
            setTimeout(() => report(-1), 5000);
            """
        )
        server.append(timing[0])
        paint.append(timing[1])
        html.append(timing[2])
        total.append(timing[3])
    print(
        f"  {path:<24} server {statistics.median(server):7.1f} ms   first paint {statistics.median(paint):7.1f} ms   "
        f"page {int(statistics.median(html)):6d} bytes   with its assets {int(max(total)):6d} bytes"
    )
driver.quit()
