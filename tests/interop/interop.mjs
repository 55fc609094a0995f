// Signs and verifies webhooks with @octokit/webhooks-methods, for tests/it/interop.rs.
//
//   node interop.mjs sign   < {"secrets": {scheme: secret}, "body": str}
//     prints [{"scheme", "sdk", "headers": {name: value}, "body"}]
//   node interop.mjs verify < {"secrets": {scheme: secret}, "requests": [{"scheme", "headers", "body"}]}
//     prints [{"scheme", "sdk", "accepted": bool, "error": str | null}]
//
// GitHub's X-Hub-Signature-256 and MediaConvert's X-MediaConvert-Signature share one format.

import { sign, verify } from "@octokit/webhooks-methods";

const SDK = `@octokit/webhooks-methods@${sign.VERSION}`;
const HEADERS = { github: "X-Hub-Signature-256", mediaconvert: "X-MediaConvert-Signature" };

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function header(headers, name) {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
}

const mode = process.argv[2];
const input = await readStdin();
let result;
if (mode === "sign") {
  result = [];
  for (const [scheme, name] of Object.entries(HEADERS)) {
    const signature = await sign(input.secrets[scheme], input.body);
    result.push({ scheme, sdk: SDK, headers: { [name]: signature }, body: input.body });
  }
} else if (mode === "verify") {
  result = [];
  for (const r of input.requests) {
    try {
      const ok = await verify(input.secrets[r.scheme], r.body, header(r.headers, HEADERS[r.scheme]));
      result.push({ scheme: r.scheme, sdk: SDK, accepted: ok, error: ok ? null : "verify returned false" });
    } catch (e) {
      result.push({ scheme: r.scheme, sdk: SDK, accepted: false, error: String(e) });
    }
  }
} else {
  console.error("usage: node interop.mjs sign|verify < request.json");
  process.exit(2);
}
process.stdout.write(JSON.stringify(result));
