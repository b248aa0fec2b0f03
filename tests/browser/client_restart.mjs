// The JavaScript client across a gateway restart that forgets its connection (no data_dir):
// the browser reconnects by itself, the gateway says it no longer knows the connection and
// gives a new one, and the client subscribes its channel again there. Run by
// tests/browser.rs, which restarts the gateway a few seconds in and publishes `after`
// until the page has it:   node tests/browser/client_restart.mjs BASE_URL
// Prints one line per check; exits 1 if any fails.

import { checkPage } from "./chromium.mjs";

const [base] = process.argv.slice(2);
await checkPage(async (page, check) => {
  await page.goto(`${base}/`);
  const result = await page.evaluate(async () => {
    const { Gateway } = await import("/client/streamgate.js");
    const gw = new Gateway(window.origin);
    const got = [];
    const channel = gw.channel("restarts");
    await channel.subscribe((m) => got.push(m.data));
    await channel.publish({ data: "before" });
    const first = gw.connectionId;
    const deadline = Date.now() + 40000;
    while (!got.includes("after") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const second = gw.connectionId;
    gw.close();
    return { got, first, second };
  });
  check(result.got[0] === "before", "a message before the restart", result.got);
  check(result.got.includes("after"), "a message after it, on the new connection", result.got);
  check(result.first !== result.second, "a new connection id", result);
});
