"""Drives the published `atlassian-python-api` client (pinned in requirements.txt) against
Bitbucket Cloud or Data Center, configured as its documentation says: a URL and a token. The
tests point the URL at Grantry's proxy and pass a Grantry API key as the token; the client is not
changed otherwise.

Usage: atlassian_client.py cloud|dc, with BASE_URL (e.g. http://127.0.0.1:8080/v1/proxy/con_…),
TOKEN, and for Cloud WORKSPACE and REPO. Prints one JSON object with what the client saw.
"""

import json
import os
import sys

from requests import HTTPError

from atlassian import Bitbucket
from atlassian.bitbucket import Cloud


def cloud(base_url, token):
    client = Cloud(url=base_url, token=token)
    seen = {"workspaces": [w.slug for w in client.workspaces.each()]}
    workspace = client.workspaces.get(os.environ["WORKSPACE"])
    seen["workspace_repositories_url"] = workspace.get_link("repositories")
    seen["repositories"] = [r.slug for r in workspace.repositories.each()]
    repository = workspace.repositories.get(os.environ["REPO"])
    seen["repository_url"] = repository.url
    pullrequests = list(repository.pullrequests.each())
    seen["pullrequests"] = [pr.title for pr in pullrequests]
    first = pullrequests[-1]
    seen["pullrequest_url"] = first.url
    seen["pullrequest_commits"] = [c.hash for c in first.commits]
    seen["pullrequest_diff"] = first.diff()
    try:
        client.workspaces.get("no-such-workspace")
        seen["missing"] = "answered"
    except HTTPError as error:
        seen["missing"] = {"status": error.response.status_code, "message": str(error)}
    return seen


def dc(base_url, token):
    client = Bitbucket(url=base_url, token=token)
    seen = {
        "projects": [p["key"] for p in client.project_list(limit=1)],
        "repositories": [r["slug"] for r in client.repo_list("PRJ", limit=2)],
    }
    try:
        client.project("NOPE")
        seen["missing"] = "answered"
    except HTTPError as error:
        seen["missing"] = {"status": error.response.status_code, "message": str(error)}
    return seen


if __name__ == "__main__":
    product = sys.argv[1]
    run = {"cloud": cloud, "dc": dc}[product]
    print(json.dumps(run(os.environ["BASE_URL"], os.environ["TOKEN"])))
