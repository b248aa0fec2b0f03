// The JavaScript client across a restart of a gateway that keeps its connections
// (`[bus] data_dir`): the browser reconnects by itself with the last event id, the gateway
// resumes the same connection from its kept journal, and the message published while the
// page was away arrives, once. Run by tests/browser.rs, which restarts the gateway once the
// page has `before`, then publishes `after` once:
//   node tests/browser/client_durable.mjs BASE_URL
// Prints one line per check; exits 1 if any fails.

import { checkPage } from "./chromium.mjs";

const [base] = process.argv.slice(2);
await checkPage(async (page, check) => {
  await page.goto(`${base}/`);
  const result = await page.evaluate(async () => {
    const { Gateway } = await import("/client/streamgate.js");
    const gw = new Gateway(window.origin);
    const got = [];
    const channel = gw.channel("durable");
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
  });
  check(JSON.stringify(result.got) === JSON.stringify(["before", "after"]),
    "the message published while the gateway restarted, once", result.got);
  check(result.first === result.second, "the same connection, resumed", result);
});
