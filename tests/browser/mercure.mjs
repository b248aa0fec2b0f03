// The Mercure hub as a browser uses it: a page of the gateway opens an EventSource on
// /.well-known/mercure with topic selectors, publishes with fetch and a JWT, and checks
// what arrives within two seconds. Run by tests/browser.rs:
//   node tests/browser/mercure.mjs BASE_URL PUBLISHER_JWT
// Prints one line per case and exits 1 if any case is not as expected.

import { checkPage } from "./chromium.mjs";

const [base, jwt] = process.argv.slice(2);

const random = () => Math.random().toString(36).slice(2);
const a = random();
const b = random();
const c = random();

// [name, update topics, selectors, private, must arrive]
const cases = [
  ["a plain string topic", [a], [a], false, true],
  ["one of several topics", [random(), b], [b], false, true],
  ["one of several selectors", [c], ["nothing-here", c], false, true],
  ["a URI", [`https://example.net/items/${a}`], [`https://example.net/items/${a}`], false, true],
  ["a URI template", [`https://example.net/items/${b}`], ["https://example.net/items/{id}"], false, true],
  ["another string", ["not-this"], ["that"], false, false],
  ["another URI", ["https://example.net/items/x"], ["https://example.net/items/y"], false, false],
  ["a template that does not match", ["https://example.net/items/x"], ["https://example.net/other/{id}"], false, false],
  ["private, to an anonymous subscriber", [a], [a], true, false],
  ["private, by URI", [`https://example.net/items/${a}`], [`https://example.net/items/${a}`], true, false],
  ["private, by template", [`https://example.net/items/${b}`], ["https://example.net/items/{id}"], true, false],
];

await checkPage(async (page, check) => {
  await page.goto(`${base}/`);
  for (const [name, topics, selectors, isPrivate, mustArrive] of cases) {
    const result = await page.evaluate(
      async ({ topics, selectors, isPrivate, jwt, name }) => {
        const url = new URL("/.well-known/mercure", window.origin);
        for (const s of selectors) url.searchParams.append("topic", s);
        const form = new URLSearchParams();
        for (const t of topics) form.append("topic", t);
        // The same id in several cases: ids need not be unique.
        form.set("id", `id-${topics.join(",")}`);
        form.set("data", `first line\n\n  third line of ${name}`);
        if (isPrivate) form.set("private", "on");
        const source = new EventSource(url);
        await new Promise((resolve, reject) => {
          source.onopen = resolve;
          setTimeout(() => reject(new Error("the EventSource did not open")), 2000);
        });
        const arrived = new Promise((resolve) => {
          source.onmessage = (e) => {
            if (e.lastEventId === form.get("id") && e.data === form.get("data")) resolve(true);
          };
          setTimeout(() => resolve(false), 2000);
        });
        const response = await fetch("/.well-known/mercure", {
          method: "POST",
          headers: { Authorization: `Bearer ${jwt}` },
          body: form,
        });
        const body = await response.text();
        const received = await arrived;
        source.close();
        return {
          received,
          status: response.status,
          type: response.headers.get("content-type"),
          body,
          id: form.get("id"),
        };
      },
      { topics, selectors, isPrivate, jwt, name },
    );
    const answered =
      result.status === 200 && /^text\/plain/.test(result.type) && result.body === result.id;
    const ok = result.received === mustArrive && answered;
    check(ok, name, result);
  }
});
