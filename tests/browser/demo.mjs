// The demo page (`serve --demo`, GET /demo) in headless Chromium: the quotes table fills and
// its prices change as patches arrive; a message typed on the page is published and shown.
// Run by tests/browser.rs:   node tests/browser/demo.mjs BASE_URL
// Prints one line per check and exits 1 if any fails. With SCREENSHOT=file.png it also
// saves the page as it ends (how docs/img/demo.png is made).

import { checkPage } from "./chromium.mjs";

const [base] = process.argv.slice(2);
await checkPage(async (page, check) => {
  await page.goto(`${base}/demo`);
  const rows = page.locator("#quotes tbody tr");
  await rows.nth(7).waitFor({ timeout: 10000 });
  check((await rows.count()) === 8, "a row per quote", await rows.count());
  const prices = async () => page.locator("#quotes td.price").allTextContents();
  const before = await prices();
  // The demo moves a few prices every second: the table follows, and says so.
  await page.locator("td.changed").first().waitFor({ timeout: 10000 });
  const after = await prices();
  check(JSON.stringify(before) !== JSON.stringify(after), "prices change in place", { before, after });
  const state = await page.locator("#state").textContent();
  check(/^live: [1-9]/.test(state), "the page counts the changes", state);
  const text = `hello ${Date.now()}`;
  await page.fill("#text", text);
  await page.click("#send button");
  await page.locator("#messages li", { hasText: text }).waitFor({ timeout: 5000 });
  check(true, "a message typed on the page is published and appears");
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
});
