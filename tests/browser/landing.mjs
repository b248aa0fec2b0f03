// The landing page (GET /) in headless Chromium: its live figures arrive and change while
// the test publishes, the chart draws them, nothing but node-wide sums shows before signing
// in, and an admin key shows the channels and streams one by one.
// Run by tests/browser.rs:   node tests/browser/landing.mjs BASE_URL ADMIN_KEY CHANNEL
// With SCREENSHOT=file.png it also saves the page (how docs/img/landing.png is made).

import { checkPage } from "./chromium.mjs";

const [base, adminKey, channel] = process.argv.slice(2);
await checkPage(async (page, check) => {
  await page.goto(`${base}/`);
  // The figures the node kept come first (from before the page watched), then live ones.
  await page.waitForFunction(() => Number(document.querySelector("[data-figure=connections]").textContent) >= 1, null, { timeout: 10000 });
  check(true, "the page's own stream is counted");
  // The test publishes a few messages a second for as long as the page runs.
  await page.waitForFunction(() => Number(document.querySelector("[data-figure=publishedPerSecond]").textContent) > 0, null, { timeout: 10000 });
  check(true, "messages published per second rise while the test publishes");
  await page.waitForFunction(() => Number(document.getElementById("chart-points").textContent) >= 3, null, { timeout: 10000 });
  const points = await page.locator("#chart .published").getAttribute("points");
  check(points.split(" ").length >= 3, "the chart draws the last seconds", points);
  const text = await page.locator("body").textContent();
  check(!text.includes(channel), "no channel is named before signing in", channel);

  await page.fill("#sign-in input", "ops:wrong");
  await page.click("#sign-in button");
  await page.locator("#sign-in-state", { hasText: "Not signed in" }).waitFor({ timeout: 5000 });
  check(true, "a wrong key is refused");
  await page.fill("#sign-in input", adminKey);
  await page.click("#sign-in button");
  await page.locator("table[data-detail=Channels] td", { hasText: channel }).waitFor({ timeout: 5000 });
  check(true, "an admin key shows the channels one by one");
  const streams = page.locator("table[data-detail=Connections] tbody tr", { hasText: "[figures]" });
  await streams.first().waitFor({ timeout: 5000 });
  check(true, "and the open streams, this page's among them");
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
});
