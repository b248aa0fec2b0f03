// A page served over TLS opens ten EventSources on the gateway (over HTTP/1.1 Chromium
// opens six per origin; the seventh waits): over HTTP/2 all ten are open at once on one
// connection, and each gets the message published to its channel.
// Run by tests/browser.rs:   node tests/browser/http2.mjs HTTPS_BASE_URL
// The gateway's certificate is the test's own: the page ignores certificate errors.

import { checkPage } from "./chromium.mjs";

const [base] = process.argv.slice(2);
await checkPage(async (page, check) => {
  await page.goto(`${base}/`);
  const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  check(protocol === "h2", "the page came over HTTP/2", protocol);
  const got = await page.evaluate(async () => {
    const sources = Array.from({ length: 10 }, (_, i) => new EventSource(`/sse?channels=tab-${i}`));
    await Promise.all(sources.map((source) => new Promise((resolve, reject) => {
      source.onopen = resolve;
      setTimeout(() => reject(new Error(`stream ${source.url} still not open`)), 10000);
    })));
    const messages = sources.map((source) => new Promise((resolve) => {
      source.onmessage = (event) => resolve(JSON.parse(event.data).data);
    }));
    for (let i = 0; i < sources.length; i++) {
      const response = await fetch(`/channels/tab-${i}/messages`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ data: `to ${i}` }),
      });
      if (response.status !== 201) throw new Error(`publish answered ${response.status}`);
    }
    const got = await Promise.all(messages);
    sources.forEach((source) => source.close());
    return got;
  });
  check(got.length === 10, "ten streams open at once");
  check(got.every((data, i) => data === `to ${i}`), "each got its channel's message", got);
}, { ignoreHTTPSErrors: true });
