// Runs the published MCP server `bitbucket-mcp` (pinned in package.json) as an MCP client would:
// over stdio, configured by environment as its README says (BITBUCKET_URL, BITBUCKET_TOKEN). The
// tests point BITBUCKET_URL at Grantry's proxy and pass a Grantry API key as the token.
//
// Environment: BASE_URL (…/v1/proxy/con_…/2.0), TOKEN, WORKSPACE, REPO, and LOG_FILE for the
// server's own log. Prints one JSON object with the answers.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const server = fileURLToPath(new URL("./node_modules/bitbucket-mcp/dist/index.js", import.meta.url));
const child = spawn(process.execPath, [server], {
  env: {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    BITBUCKET_URL: process.env.BASE_URL,
    BITBUCKET_TOKEN: process.env.TOKEN,
    BITBUCKET_LOG_FILE: process.env.LOG_FILE,
  },
  stdio: ["pipe", "pipe", "inherit"],
});

// Answers arrive as JSON lines, not necessarily in order: match them by id.
const waiting = new Map();
createInterface({ input: child.stdout }).on("line", (line) => {
  const message = JSON.parse(line);
  if (message.id !== undefined && waiting.has(message.id)) {
    waiting.get(message.id)(message);
    waiting.delete(message.id);
  }
});
let nextId = 1;
const call = (method, params) =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => reject(new Error(`no answer to ${method} in 30 s`)), 30_000);
    waiting.set(id, (message) => {
      clearTimeout(timer);
      resolve(message);
    });
    child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
  });
const notify = (method, params) => child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method, params }) + "\n");
const tool = async (name, args) => {
  const answer = await call("tools/call", { name, arguments: args });
  if (answer.error) return { error: answer.error.message };
  const text = answer.result.content.map((part) => part.text).join("");
  return answer.result.isError ? { error: text } : JSON.parse(text);
};

const seen = {};
const initialized = await call("initialize", {
  protocolVersion: "2024-11-05",
  capabilities: {},
  clientInfo: { name: "grantry-interop", version: "1" },
});
seen.server = initialized.result?.serverInfo?.name ?? initialized.error?.message;
notify("notifications/initialized", {});
const tools = await call("tools/list", {});
seen.tools = tools.result.tools.map((t) => t.name);
const workspace = process.env.WORKSPACE;
const repositories = await tool("listRepositories", { workspace, pagelen: 2, all: true });
seen.repositories = repositories.error ?? repositories.map((r) => r.slug);
const created = await tool("createPullRequest", {
  workspace,
  repo_slug: process.env.REPO,
  title: "From bitbucket-mcp",
  description: "Opened by an agent through Grantry",
  sourceBranch: "feature",
  targetBranch: "main",
});
seen.created = created.error ?? { id: created.id, title: created.title };
child.kill();
console.log(JSON.stringify(seen));
