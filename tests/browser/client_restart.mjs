// The JavaScript client across a gateway restart. Run by tests/browser.rs, which restarts
// the gateway once the page has `before`, then publishes `after`:
//   node tests/browser/client_restart.mjs BASE_URL forgotten|kept
// - forgotten (no data_dir): the browser reconnects by itself, the gateway says it no
//   longer knows the connection and gives a new one, and the client subscribes its channel
//   again there (the test publishes `after` until the page has it);
// - kept (`[bus] data_dir`): the gateway resumes the same connection from its kept journal,
//   and `after`, published once while the page was away, arrives once.
// Prints one line per check; exits 1 if any fails.

import { checkPage } from "./chromium.mjs";

const [base, mode] = process.argv.slice(2);
await checkPage(async (page, check) => {
  await page.goto(`${base}/`);
  const result = await page.evaluate(async (channelName) => {
    const { Gateway } = await import("/client/streamgate.js");
    const gw = new Gateway(window.origin);
    const got = [];
    const channel = gw.channel(channelName);
    await channel.subscribe((m) => got.push(m.data));
    await channel.publish({ data: "before" });
    const first = gw.connectionId;
    const deadline = Date.now() + 40000;
    while (!got.includes("after") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // Long enough for a repeat to show.
    await new Promise((r) => setTimeout(r, 1000));
    const second = gw.connectionId;
    gw.close();
    return { got, first, second };
  }, `restarts-${mode}`);
  check(result.got[0] === "before", "a message before the restart", result.got);
  if (mode === "kept") {
    check(JSON.stringify(result.got) === JSON.stringify(["before", "after"]),
      "the message published while the gateway restarted, once", result.got);
    check(result.first === result.second, "the same connection, resumed", result);
  } else {
    check(result.got.includes("after"), "a message after it, on the new connection", result.got);
    check(result.first !== result.second, "a new connection id", result);
  }
});
