// The JavaScript client (/client/streamgate.js) in a page of the gateway: channels in
// order, publishing and history, a live document equal to the API's, everything over one
// streaming connection. Run by tests/browser.rs:
//   node tests/browser/client.mjs BASE_URL API_URL API_PATH
// (the API's version v is the document `version(v)` below, and changes every 150 ms; the
// gateway also serves it as a configured API at API_PATH, /apis/{name}/...)
// Prints one line per check and exits 1 if any fails.

import { checkPage } from "./chromium.mjs";

const [base, api, apiPath] = process.argv.slice(2);

await checkPage(async (page, check) => {
  await page.goto(`${base}/`);
  const result = await page.evaluate(
    async ({ api, apiPath }) => {
      // Count the streaming connections the client opens.
      const Native = window.EventSource;
      let opened = 0;
      window.EventSource = class extends Native {
        constructor(...args) {
          super(...args);
          opened += 1;
        }
      };
      const { Gateway, applyPatch } = await import("/client/streamgate.js");
      const within = (ms, promise, what) =>
        Promise.race([
          promise,
          new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
        ]);

      const gw = new Gateway(window.origin);
      const a = gw.channel("client-a");
      const b = gw.channel("client-b");
      const got = { a: [], b: [] };
      await a.subscribe((m) => got.a.push(m.data));
      await b.subscribe((m) => got.b.push(m.data));
      for (let i = 0; i < 20; i++) await (i % 2 ? b : a).publish({ name: "n", data: i });
      await within(5000, (async () => {
        while (got.a.length < 10 || got.b.length < 10) await new Promise((r) => setTimeout(r, 20));
      })(), "channel messages");
      const history = (await a.history()).map((m) => m.data);

      // A live document, its first value then each patch applied: every version it holds
      // is the API's document of that version, whole.
      const version = (v) => ({
        v,
        price: v * 3,
        "key/with~": v % 3,
        items: Array.from({ length: 20 }, (_, n) => ({ n, name: `item ${n}` })),
      });
      const canonical = (v) =>
        JSON.stringify(v, (_, x) =>
          x && typeof x === "object" && !Array.isArray(x)
            ? Object.fromEntries(Object.entries(x).sort(([k], [l]) => (k < l ? -1 : 1)))
            : x,
        );
      const document = gw.document(api, { pollInterval: 100 });
      let patches = 0;
      let wrong = null;
      let seen = 0;
      await within(15000, new Promise((resolve) => {
        document.subscribe((value, patch) => {
          seen += 1;
          if (patch) patches += 1;
          if (canonical(value) !== canonical(version(value.v))) wrong = wrong || value;
          if (patches >= 5) resolve();
        });
      }), "five patches");

      // The same document asked for again: the same one, whose value a new listener gets
      // at once.
      const again = gw.document(api, { pollInterval: 100 });
      let firstSeen = null;
      again.subscribe((value, patch) => {
        if (firstSeen === null) firstSeen = { v: value.v, patch };
      });
      const shared = again === document && firstSeen !== null && firstSeen.patch === null;

      // The API as the gateway serves it, asked for by its gateway path: named by it.
      const named = gw.document(apiPath, { pollInterval: 100 });
      let namedPatches = 0;
      let namedWrong = null;
      await within(15000, new Promise((resolve) => {
        named.subscribe((value, patch) => {
          if (patch) namedPatches += 1;
          if (canonical(value) !== canonical(version(value.v))) namedWrong = namedWrong || value;
          if (namedPatches >= 2) resolve();
        });
      }), "two patches of the API by its gateway path");
      const byPath = { stream: named.stream, wrong: namedWrong };

      // Two listeners of one channel: one stops, the other goes on.
      const second = [];
      const listener = (m) => second.push(m.data);
      await a.subscribe(listener);
      await a.publish({ data: "both" });
      await within(5000, (async () => {
        while (!second.includes("both")) await new Promise((r) => setTimeout(r, 20));
      })(), "a message to both listeners");
      await a.unsubscribe(listener);
      await a.publish({ data: "first only" });
      await within(5000, (async () => {
        while (!got.a.includes("first only")) await new Promise((r) => setTimeout(r, 20));
      })(), "a message after one listener left");
      const listeners = { first: got.a.slice(-2), second };

      // Dropped: its messages stop; the other goes on, on the same connection.
      await b.unsubscribe();
      await b.publish({ data: "after" });
      await a.publish({ data: "after" });
      await within(5000, (async () => {
        while (got.a.length < 13) await new Promise((r) => setTimeout(r, 20));
      })(), "a message after the other channel left");
      await new Promise((r) => setTimeout(r, 300));
      gw.close();

      // The patch algorithm on its own: RFC 6902's operations.
      const patched = applyPatch(
        { a: [1, 2, 3], b: { "x/y": 1, "m~n": 2 }, c: "keep" },
        [
          { op: "add", path: "/a/1", value: 9 },
          { op: "remove", path: "/a/0" },
          { op: "replace", path: "/b/x~1y", value: 5 },
          { op: "move", from: "/b/m~0n", path: "/moved" },
          { op: "copy", from: "/c", path: "/a/-" },
          { op: "test", path: "/c", value: "keep" },
        ],
      );
      // Each of these must be refused, leaving the document as it was.
      const refusals = [
        [{ op: "test", path: "/a", value: 2 }],
        [{ op: "move", from: "/list/0", path: "/list/0/x" }],
        [{ op: "add", path: "/b" }],
        [{ op: "remove", path: "/list/-" }],
        [{ op: "add", path: "/list/01", value: 1 }],
        [{ op: "add", path: "/b", value: 1 }, { op: "remove", path: "/nothing" }],
      ];
      const original = { a: 1, list: [{}, {}] };
      const refused = refusals.every((patch) => {
        try {
          applyPatch(original, patch);
          return false;
        } catch {
          return JSON.stringify(original) === '{"a":1,"list":[{},{}]}';
        }
      });
      const own = applyPatch({}, [{ op: "add", path: "/__proto__", value: { admin: true } }]);
      const ownMember = Object.hasOwn(own, "__proto__") && own.admin === undefined;
      return { got, history, wrong, seen, patches, opened, patched, refused, ownMember, shared, listeners, byPath };
    },
    { api, apiPath },
  );
  const range = (n, from) => Array.from({ length: n }, (_, i) => from + 2 * i);
  // JSON with its objects' keys sorted: equal documents, equal texts.
  const canonical = (v) =>
    JSON.stringify(v, (_, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.entries(x).sort(([k], [l]) => (k < l ? -1 : 1)))
        : x,
    );
  check(
    JSON.stringify(result.got.a) === JSON.stringify([...range(10, 0), "both", "first only", "after"]),
    "one channel's messages, in order",
    result.got.a,
  );
  check(
    JSON.stringify(result.got.b) === JSON.stringify(range(10, 1)),
    "the other's, and none after it left",
    result.got.b,
  );
  check(
    JSON.stringify(result.history) === JSON.stringify(range(10, 0)),
    "history",
    result.history,
  );
  check(result.wrong === null, "every version of the live document equals the API's", result.wrong);
  check(result.patches >= 5, "patches kept it live", { patches: result.patches, seen: result.seen });
  check(result.opened === 1, "one streaming connection for everything", result.opened);
  check(
    canonical(result.patched) ===
      canonical({ a: [9, 2, 3, "keep"], b: { "x/y": 5 }, c: "keep", moved: 2 }),
    "RFC 6902 operations",
    result.patched,
  );
  check(result.refused, "patches that cannot apply are refused whole", result.refused);
  check(result.shared, "a document asked for twice is one, its value given at once", result.shared);
  check(
    JSON.stringify(result.listeners) === JSON.stringify({ first: ["both", "first only"], second: ["both"] }),
    "a listener that unsubscribes alone stops alone",
    result.listeners,
  );
  check(result.ownMember, "a __proto__ member is an own member", result.ownMember);
  check(
    result.byPath.stream === apiPath && result.byPath.wrong === null,
    "a configured API by its gateway path: named by it, every version whole",
    result.byPath,
  );
});
