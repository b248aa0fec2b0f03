// The JavaScript client when its token expires: the gateway ends the stream (40142), the
// client asks authCallback for a new token and goes on with it. Run by tests/browser.rs:
//   node tests/browser/client_token.mjs BASE_URL KEY_NAME KEY_SECRET
// It signs its tokens itself (HS256, `kid` KEY_NAME) as the page starts: the first expires
// 4 s later. Prints one line per check; exits 1 if any fails.

import { createHmac } from "node:crypto";
import { checkPage } from "./chromium.mjs";

const [base, kid, secret] = process.argv.slice(2);
const sign = (exp) => {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const signed = `${part({ alg: "HS256", typ: "JWT", kid })}.${part({ exp, capability: { "*": ["*"] } })}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
};
const now = Math.floor(Date.now() / 1000);
const [short, long] = [sign(now + 4), sign(now + 600)];
await checkPage(async (page, check) => {
  await page.goto(`${base}/`);
  const result = await page.evaluate(
    async ({ short, long }) => {
      const { Gateway } = await import("/client/streamgate.js");
      let asked = 0;
      const gw = new Gateway(window.origin, {
        token: short,
        authCallback: async () => {
          asked += 1;
          return long;
        },
      });
      const got = [];
      const channel = gw.channel("room:tokens");
      await channel.subscribe((m) => got.push(m.data));
      await channel.publish({ data: "before" });
      // Past the short token's expiry the stream ends; the client renews its token.
      const deadline = Date.now() + 15000;
      while (asked === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // Published with the new token until one arrives on the connection it opens (one
      // published before the client is subscribed again is not delivered: docs/CLIENT.md).
      while (!got.includes("after") && Date.now() < deadline) {
        await channel.publish({ data: "after" }).catch(() => {});
        await new Promise((r) => setTimeout(r, 300));
      }
      gw.close();
      return { got, asked };
    },
    { short, long },
  );
  check(result.got[0] === "before", "the first message", result.got);
  check(result.got.includes("after"), "a message after the token was renewed", result.got);
  check(result.asked === 1, "authCallback asked once", result.asked);
});
