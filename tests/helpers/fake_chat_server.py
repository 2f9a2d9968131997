"""A fake OpenAI-compatible chat server on 127.0.0.1, shared by the judge and factor tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeChatServer:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1: says Yes when the reasoning has "left upper".

    mode "ok" answers, "fail" returns HTTP 500, "slow" sleeps past the client's timeout; the malformed replies of
    a broken server: "reply" answers `reply` (any text) with status 200, "not_json" a body that is not JSON,
    "no_choices" `{"choices": []}`.
    """

    def __init__(self):
        self.mode, self.requests, self.auth, self.reply = "ok", 0, set(), "Yes"
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    server.auth.add(self.headers.get("Authorization"))
                if server.mode == "fail":
                    return self._send(500, {"error": {"message": "judge backend exploded"}})
                if server.mode == "slow":
                    time.sleep(1.0)
                if server.mode == "not_json":
                    return self._send(200, None, b"{not json")
                if server.mode == "no_choices":
                    return self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "choices": []})
                reasoning = body["messages"][-1]["content"].split(" reasoning ", 1)[1]
                answer = "Yes" if "left upper" in reasoning else "No"
                if server.mode == "reply":
                    answer = server.reply
                self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": answer}}]})

            def _send(self, status, payload, data=None):
                data = json.dumps(payload).encode() if data is None else data
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
