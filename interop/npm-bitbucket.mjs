// Drives the published npm client `bitbucket` (pinned in package.json) against a Bitbucket Cloud
// API, configured as its README says: a base URL and a token. The tests point the base URL at
// Grantry's proxy and pass a Grantry API key as the token; the client is not changed otherwise.
//
// Environment: BASE_URL (e.g. http://127.0.0.1:8080/v1/proxy/con_…/2.0), TOKEN, WORKSPACE, REPO,
// BROKEN_BASE_URL (a proxy URL whose connection does not exist).
// Prints one JSON object with what the client saw.
import bitbucketPackage from "bitbucket";

const { Bitbucket } = bitbucketPackage;

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};
const [workspace, repo_slug] = [env("WORKSPACE"), env("REPO")];
const bitbucket = new Bitbucket({ baseUrl: env("BASE_URL"), auth: { token: env("TOKEN") }, notice: false });

const seen = {};
const user = await bitbucket.users.getAuthedUser({});
seen.user = user.data.username;

// Every repository of the workspace, two per page, through getNextPage.
let page = await bitbucket.repositories.list({ workspace, pagelen: 2 });
seen.pages = 1;
seen.repositories = page.data.values.map((r) => r.slug);
seen.next_links = [page.data.next];
while (bitbucket.hasNextPage(page.data)) {
  page = await bitbucket.getNextPage(page.data);
  seen.pages += 1;
  seen.repositories.push(...page.data.values.map((r) => r.slug));
  seen.next_links.push(page.data.next ?? null);
}

const created = await bitbucket.pullrequests.create({
  workspace,
  repo_slug,
  _body: { title: "From npm bitbucket", source: { branch: { name: "feature" } } },
});
seen.created = { status: created.status, id: created.data.id, self: created.data.links.self.href };
const listed = await bitbucket.pullrequests.list({ workspace, repo_slug });
seen.pullrequests = listed.data.values.map((pr) => pr.title);

const file = await bitbucket.repositories.readSrc({ workspace, repo_slug, commit: "main", path: "docs/guide.md" });
seen.file = file.data;
const diff = await bitbucket.pullrequests.getDiff({ workspace, repo_slug, pull_request_id: created.data.id });
seen.diff = diff.data;
seen.diff_url = diff.url;

const broken = new Bitbucket({ baseUrl: env("BROKEN_BASE_URL"), auth: { token: env("TOKEN") }, notice: false });
try {
  await broken.users.getAuthedUser({});
  seen.broken = "answered";
} catch (error) {
  seen.broken = { status: error.status, message: error.error?.error?.message ?? null };
}

console.log(JSON.stringify(seen));
