// Debian's Chromium, headless, as the browser tests drive it: no sandbox (tests run as
// root in CI), and no background networking (the machine's network is closed; Chromium
// would keep trying Google's hosts).

import { chromium } from "playwright-core";

function launch() {
  // A script never hangs its test: past this, it fails.
  setTimeout(() => {
    console.log("FAILED: the script took longer than 90 s");
    process.exit(1);
  }, 90000).unref();
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Runs `body(page, check)` in a new page (made with `pageOptions`) of a launched browser, printing what the page logs
 * and throws. Each `check(ok, what, detail)` prints one line (the detail when it failed); an
 * exception out of `body` fails as "the page". Exits 1 if anything failed, else 0.
 */
export async function checkPage(body, pageOptions = {}) {
  const browser = await launch();
  let failed = 0;
  const check = (ok, what, detail) => {
    if (!ok) failed += 1;
    console.log(`${ok ? "ok" : "FAILED"}: ${what}${ok ? "" : `: ${JSON.stringify(detail)}`}`);
  };
  try {
    const page = await browser.newPage(pageOptions);
    page.on("console", (m) => console.log(`page: ${m.text()}`));
    page.on("pageerror", (e) => console.log(`page error: ${e}`));
    await body(page, check);
  } catch (e) {
    check(false, "the page", String(e));
  } finally {
    await browser.close();
  }
  process.exit(failed === 0 ? 0 : 1);
}
