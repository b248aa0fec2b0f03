// Debian's Chromium, headless, as the browser tests drive it: no sandbox (tests run as
// root in CI), and no background networking (the machine's network is closed; Chromium
// would keep trying Google's hosts).

import { chromium } from "playwright-core";

export function launch() {
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
