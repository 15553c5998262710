// A client generated from Grantry's OpenAPI document by openapi-typescript (the types, made by
// the test in api.d.ts) and openapi-fetch (the calls). tsc checks this file against the
// generated types before it runs, so a wrong document fails at compile time or here at run time.
// It creates a profile, a connect session, follows the link as a browser would, confirms the
// connection and reads its token.
import createClient from "openapi-fetch";
import type { paths, components } from "./api.js";

type Token = components["schemas"]["TokenView"];

function fail(what: string, detail: unknown): never {
  console.error(JSON.stringify({ failed: what, detail }));
  process.exit(1);
}

const base = process.env.GRANTRY_URL ?? fail("GRANTRY_URL", null);
const headers = { Authorization: `Bearer ${process.env.GRANTRY_ADMIN_KEY}` };
const grantry = createClient<paths>({ baseUrl: base, headers });

const consumer = JSON.parse(process.env.CONSUMER ?? "{}") as { key: string; secret: string };
const made = await grantry.POST("/v1/profiles", {
  body: {
    name: "Generated client",
    provider: "bitbucket-cloud",
    key: consumer.key,
    secret: consumer.secret,
    required_scopes: ["repository"],
    allowed_return_urls: ["https://app.example.com/done"],
  },
});
if (!made.data) fail("createProfile", made.error);
const profile = made.data;
const ticks: string[] = profile.setup.tick ?? [];

const session = await grantry.POST("/v1/connect-sessions", {
  body: { profile: profile.id, end_user_id: "user-7", return_url: "https://app.example.com/done" },
});
if (!session.data) fail("createConnectSession", session.error);

// The end user's browser: it keeps cookies and is sent back to the application's return URL.
let cookies: string[] = [];
let url = session.data.url;
for (let hop = 0; hop < 10 && !url.startsWith("https://app.example.com/"); hop++) {
  const answer = await fetch(url, { redirect: "manual", headers: { cookie: cookies.join("; ") } });
  cookies = cookies.concat(answer.headers.getSetCookie().map((c) => c.split(";")[0]));
  url = new URL(answer.headers.get("location") ?? fail("redirect", answer.status), url).toString();
}
const landed = new URL(url);
const code = landed.searchParams.get("verification_code") ?? fail("verification_code", url);

const confirmed = await grantry.POST("/v1/connect-sessions/{session}/confirm", {
  params: { path: { session: session.data.id } },
  body: { end_user_id: "user-7", verification_code: code },
});
if (!confirmed.data) fail("confirmConnectSession", confirmed.error);
const connection = confirmed.data;

const read = await grantry.GET("/v1/connections/{connection}/token", {
  params: { path: { connection: connection.id } },
});
if (!read.data) fail("getToken", read.error);
const token: Token = read.data;

const missing = await grantry.GET("/v1/connections/{connection}", {
  params: { path: { connection: "con_00000000000000000000000000" } },
});
const problem = missing.error ?? fail("a missing connection was found", missing.data);

console.log(
  JSON.stringify({
    profile: profile.id,
    ticks,
    connection: connection.id,
    status: connection.status,
    token_type: token.token_type,
    token_length: token.access_token.length,
    account: token.account.username,
    missing: { status: problem.status, code: problem.code },
  }),
);
