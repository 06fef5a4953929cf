#!/usr/bin/python3
"""httpd.py: the HTTPS endpoint of the http action's tests (sink_http.t).

Listens on 127.0.0.1 (HTTPS with --cert/--key, and plain HTTP with
--http-port), prints "listening PORT" (and "listening-http PORT") on
stdout, and records every request: method, path, headers, body (text, or
base64 when it is not UTF-8), and, when it carries a SigV4 Authorization,
the check of tests/backends/recorder.py (botocore) as "sigv4".

Answers 200 {"ok": true} unless told otherwise through its control paths
(same port, never recorded):

  GET    /__httpd/requests          the record, a JSON list
  DELETE /__httpd/requests          clears it
  POST   /__httpd/fail?count=N&status=S[&body=BYTES][&close=1][&hangup=1]
         [&delay_ms=MS][&path=PREFIX]
        the next N requests (whose path starts with PREFIX) get status S
        with a body of BYTES bytes (default a short JSON), "Connection:
        close" (close=1), no answer at all, the connection closed at once
        (hangup=1), or an answer after MS ms (delay_ms); rules are used in
        the order they were added
  POST   /__httpd/confirm?echo=0|1  whether a DestinationConfirmation
        request (x-amz-rules-engine-message-type) is answered with
        {"confirmationToken": TOKEN} (1, the default: the endpoint owner
        confirms) or with a plain 200 {"ok": true} (0)

Nothing here is secret: the certificate comes from gen-certs.sh, the
credentials are AWS's documented example keys.
"""
import argparse, base64, http.server, json, os, socket, ssl, sys, threading, time
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recorder  # noqa: E402  (its SigV4 check)


class State:
    def __init__(self, creds):
        self.lock = threading.Lock()
        self.requests = []
        self.rules = []
        self.echo = True
        self.creds = creds     # what recorder.verify reads
        self.temp = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "httpd.py"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body go out as two writes: without TCP_NODELAY the
        # body waits for the client's delayed ACK of the headers (about
        # 40 ms a request), as in recorder.py.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def answer(self, status, body, close=False, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def control(self, st, u):
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        if u.path == "/__httpd/requests":
            with st.lock:
                if self.command == "DELETE":
                    st.requests = []
                    return self.answer(200, b"[]")
                data = json.dumps(st.requests).encode()
            return self.answer(200, data)
        if u.path == "/__httpd/fail":
            rule = {"count": int(q.get("count", 1)), "status": int(q.get("status", 500)),
                    "body": int(q["body"]) if "body" in q else None, "close": q.get("close") == "1",
                    "hangup": q.get("hangup") == "1", "delay_ms": int(q.get("delay_ms", 0)),
                    "path": q.get("path", "")}
            with st.lock:
                st.rules.append(rule)
            return self.answer(200, b'{"ok":true}')
        if u.path == "/__httpd/confirm":
            with st.lock:
                st.echo = q.get("echo", "1") == "1"
            return self.answer(200, b'{"ok":true}')
        return self.answer(404, b'{"error":"no such control path"}')

    def handle_any(self):
        st = self.server.st
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        u = urlsplit(self.path)
        if u.path.startswith("/__httpd/"):
            return self.control(st, u)
        try:
            text, b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, b64 = base64.b64encode(body).decode(), True
        rec = {"t": time.time(), "method": self.command, "path": self.path,
               "headers": {k.lower(): v for k, v in self.headers.items()}, "body": text, "base64": b64}
        if (self.headers.get("Authorization") or "").startswith("AWS4-HMAC-SHA256"):
            rec["sigv4"] = recorder.verify(st, self.command, u.path, u.query, self.headers, body)
        rule = None
        with st.lock:
            for r in st.rules:
                if r["count"] > 0 and u.path.startswith(r["path"]):
                    r["count"] -= 1
                    rule = dict(r)
                    break
            st.rules = [r for r in st.rules if r["count"] > 0]
            rec["answer"] = rule["status"] if rule else 200
            if rule and rule["hangup"]:
                rec["answer"] = "hangup"
            st.requests.append(rec)
            echo = st.echo
        if rule:
            if rule["delay_ms"]:
                time.sleep(rule["delay_ms"] / 1000.0)
            if rule["hangup"]:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            payload = b"x" * rule["body"] if rule["body"] is not None else b'{"error":"injected"}'
            return self.answer(rule["status"], payload, close=rule["close"])
        if self.headers.get("x-amz-rules-engine-message-type") == "DestinationConfirmation" and echo:
            token = json.loads(body or b"{}").get("confirmationToken", "")
            return self.answer(200, json.dumps({"confirmationToken": token}).encode())
        return self.answer(200, b'{"ok":true}')

    do_POST = do_GET = do_PUT = do_DELETE = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, st, ctx=None):
        super().__init__(("127.0.0.1", port), Handler)
        self.st = st
        self.ctx = ctx

    def get_request(self):
        sock, addr = super().get_request()
        if self.ctx:
            sock = self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass   # a client gone, a TLS handshake refused: the test sees it on its side


def exit_with_parent(parent):
    # The test's shell may die without its EXIT trap (kill -9): go with it.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--http-port", type=int)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cred", action="append", default=[], metavar="AKID:SECRET")
    args = ap.parse_args()
    st = State(dict(c.split(":", 1) for c in args.cred))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    servers = [Server(args.port, st, ctx)]
    print("listening %d" % servers[0].server_address[1], flush=True)
    if args.http_port is not None:
        servers.append(Server(args.http_port, st))
        print("listening-http %d" % servers[1].server_address[1], flush=True)
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
