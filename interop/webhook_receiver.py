"""A webhook receiver that trusts nothing it cannot verify with the published Standard Webhooks
library (PyPI `standardwebhooks`, pinned in requirements.txt). Used by Grantry's tests.

    python webhook_receiver.py PORT

Control (JSON over HTTP, on the same port):
  POST /_control {"secrets": ["whsec_..."], "script": [{"status": 429, "retry_after": 2}, ...],
                  "delay_ms": 0}
      secrets: any one of them must verify a delivery; script: answers to give, in order, to the
      next verified deliveries (then 204); delay_ms: wait before answering.
  GET /_received -> {"accepted": [...], "duplicates": [...], "rejected": [...], "requests": [...]}

Every POST elsewhere is a delivery: verified with `Webhook(secret).verify(body, headers)`;
refused with 400 and the library's reason when no secret verifies it. A verified delivery whose
`webhook-id` was accepted before is a replay: answered 204 (so the sender stops) and recorded
under "duplicates", not accepted twice.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

lock = threading.Lock()
state = {"secrets": [], "script": [], "delay_ms": 0}
seen = set()
log = {"accepted": [], "duplicates": [], "rejected": [], "requests": []}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/_received":
            return self.answer(404)
        with lock:
            body = json.dumps(log).encode()
        self.answer(200, body, [("Content-Type", "application/json")])

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/_control":
            control = json.loads(body)
            with lock:
                state.update(control)
            return self.answer(204)
        headers = {k: v for k, v in self.headers.items()}
        msg_id = headers.get("webhook-id") or headers.get("Webhook-Id")
        now = time.time()
        with lock:
            secrets = list(state["secrets"])
            delay = state["delay_ms"]
            log["requests"].append({"id": msg_id, "at": now})
        verified, reasons = None, []
        for secret in secrets:
            try:
                verified = Webhook(secret).verify(body, headers)
                break
            except WebhookVerificationError as error:
                reasons.append(str(error))
        if verified is None:
            with lock:
                log["rejected"].append({"id": msg_id, "reasons": reasons or ["no secret"]})
            return self.answer(400, json.dumps({"refused": reasons}).encode())
        if delay:
            time.sleep(delay / 1000)
        with lock:
            if msg_id in seen:
                log["duplicates"].append({"id": msg_id, "at": now})
                status, retry_after = 204, None
            elif state["script"]:
                step = state["script"].pop(0)
                status, retry_after = step["status"], step.get("retry_after")
            else:
                status, retry_after = 204, None
            if 200 <= status < 300 and msg_id not in seen:
                seen.add(msg_id)
                log["accepted"].append({
                    "id": msg_id,
                    "at": now,
                    "type": verified["type"],
                    "data": verified["data"],
                    "signatures": headers.get("webhook-signature", "").count("v1,"),
                })
        extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
        self.answer(status, b"", extra)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    server.serve_forever()
