// The JavaScript client when its token expires: the gateway ends the stream (40142), the
// client asks authCallback for a new token and resumes the connection with it: a message
// published while the token was being renewed arrives. Run by tests/browser.rs:
//   node tests/browser/client_token.mjs BASE_URL KEY_NAME KEY_SECRET
// It signs its tokens itself (HS256, `kid` KEY_NAME) as the page starts: the first expires
// 4 s later. Prints one line per check; exits 1 if any fails.

import { createHmac } from "node:crypto";
import { checkPage } from "./chromium.mjs";

const [base, kid, secret] = process.argv.slice(2);
const sign = (exp) => {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const claims = { exp, clientId: "tab-1", capability: { "*": ["*"] } };
  const signed = `${part({ alg: "HS256", typ: "JWT", kid })}.${part(claims)}`;
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
          // Published while the stream is down and the client waits for its token.
          const response = await fetch("/channels/room:tokens/messages", {
            method: "POST",
            headers: { "Content-Type": "application/json", Authorization: `Bearer ${long}` },
            body: JSON.stringify({ data: "during" }),
          });
          if (response.status !== 201) throw new Error(`publish answered ${response.status}`);
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
      const connection = gw.connectionId;
      while (gw.token !== long && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await gw.connected;
      await channel.publish({ data: "after" });
      while (!got.includes("after") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      gw.close();
      return { got, asked, resumed: gw.connectionId === connection };
    },
    { short, long },
  );
  check(JSON.stringify(result.got) === JSON.stringify(["before", "during", "after"]),
    "every message, in order, the one published during the renewal too", result.got);
  check(result.asked === 1, "authCallback asked once", result.asked);
  check(result.resumed, "the same connection, resumed with the new token");
});
