#!/usr/bin/python3
"""recorder.py: a SigV4-checking HTTPS endpoint for the sink integration tests.

One process, several listeners, all on 127.0.0.1:
  --port P          HTTPS: checks SigV4 like an AWS server, records every request
                    and answers Firehose, Lambda, STS and the services without an
                    emulator (canned 200s) itself.
  --proxy P=URL     HTTPS: checks SigV4 the same way, then forwards the request
                    unchanged to the emulator at URL and relays its answer.
  --http-port P     plain HTTP: EC2 IMDSv2 and container credential endpoints.
Port 0 picks a free port; --ready-file gets the real ports as JSON once all
listen.  Control endpoints (unsigned, on every HTTPS listener) are under
/__recorder/ (see tests/backends/README.md).  Needs Debian's python3-botocore;
run with /usr/bin/python3.
"""
import argparse, base64, datetime, hashlib, http.client, http.server, json, os
import re, secrets, signal, socket, socketserver, ssl, sys, threading, time, traceback, uuid
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

DEFAULT_CRED = "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ACCOUNT = "123456789012"
TARGET_SERVICES = {"Firehose_": "firehose", "DynamoDB_": "dynamodb", "Kinesis_": "kinesis",
                   "AmazonSQS": "sqs", "AWSStepFunctions": "states", "Logs_": "logs",
                   "Timestream_": "timestream", "AWSSecurityTokenService": "sts"}
DEFAULT_CODES = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
                 429: "ThrottlingException", 500: "InternalFailure", 502: "BadGateway",
                 503: "ServiceUnavailableException", 504: "GatewayTimeout"}
MAX_SKEW = 900

# Services answered by modules of their own: every svc_*.py next to this
# file declares SERVICES (the signing names it answers) and serve(req),
# and may declare control(req) for /__recorder/svc/<service>/... (see
# Request and tests/backends/README.md).
PLUGINS = {}


def load_plugins():
    import glob, importlib.util
    for f in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "svc_*.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(f)[:-3], f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name in mod.SERVICES:
            PLUGINS[name] = mod


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.creds = dict(c.split(":", 1) for c in (args.cred or [DEFAULT_CRED]))
        self.temp = {}          # akid -> {"secret","token","exp","role"}
        self.requests = []
        self.seq = 0
        self.fails = []         # [{"status","count","code","service","retry_after"}]
        self.partials = []      # [{"service","count","every"}]
        self.missing_fns = set()
        self.svc = {}           # plugins' state, by service
        self.failing_fns = set()
        self.assumed = []
        self.imds_tokens = {}   # token -> expiry
        self.imds_creds = None
        self.args = args
        self.log = open(args.log, "a") if args.log else None

    def issue(self, role, via):
        ak = "ASIA" + secrets.token_hex(8).upper()
        c = {"secret": secrets.token_urlsafe(30), "token": "FwoG" + secrets.token_urlsafe(96),
             "exp": time.time() + self.args.temp_creds_ttl, "role": role, "via": via}
        with self.lock:
            self.temp[ak] = c
        return ak, c

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.requests.append(entry)
            if self.log:
                self.log.write(json.dumps(entry) + "\n")
                self.log.flush()

    def take(self, rules, service):
        """Consumes one use of the first rule matching service, or None."""
        with self.lock:
            for r in rules:
                if r["count"] > 0 and r["service"] in (None, service):
                    r["count"] -= 1
                    return dict(r)
        return None


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_query(query):
    pairs = [(quote(k, safe="-_.~"), quote(v, safe="-_.~"))
             for k, v in parse_qsl(query, keep_blank_values=True)]
    return "&".join("%s=%s" % kv for kv in sorted(pairs))


def verify(st, method, raw_path, query, headers, body):
    """Checks the SigV4 Authorization header as an AWS server would.
    Returns a dict: valid, reason, access_key, service, region, temp."""
    res = {"valid": False, "reason": "", "access_key": None, "service": None, "region": None}
    auth = headers.get("Authorization")
    if not auth:
        res["reason"] = "missing"
        return res
    m = re.match(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})\s*$", auth)
    if not m:
        res["reason"] = "malformed Authorization header"
        return res
    scope, signed, signature = m.group(1).split("/"), m.group(2).split(";"), m.group(3)
    if len(scope) != 5 or scope[4] != "aws4_request":
        res["reason"] = "bad credential scope %s" % m.group(1)
        return res
    ak, day, region, service = scope[:4]
    res.update(access_key=ak, service=service, region=region)
    amzdate = headers.get("X-Amz-Date", "")
    try:
        t = datetime.datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        res["reason"] = "missing or malformed X-Amz-Date"
        return res
    if abs(t.timestamp() - time.time()) > MAX_SKEW:
        res["reason"] = "X-Amz-Date %s is more than %d s from the server time" % (amzdate, MAX_SKEW)
        res["code"] = "InvalidSignatureException"
        return res
    if day != amzdate[:8]:
        res["reason"] = "credential scope date %s does not match X-Amz-Date" % day
        return res
    if "host" not in signed:
        res["reason"] = "'Host' must be a 'SignedHeader'"
        return res
    if signed != sorted(signed) or any(h != h.lower() for h in signed):
        res["reason"] = "SignedHeaders not lowercase and sorted"
        return res
    with st.lock:
        secret, temp = st.creds.get(ak), st.temp.get(ak)
    if temp:
        secret = temp["secret"]
        res["temp"] = True
        if headers.get("X-Amz-Security-Token") != temp["token"]:
            res["reason"] = "X-Amz-Security-Token missing or not the one issued with %s" % ak
            res["code"] = "UnrecognizedClientException"
            return res
        if time.time() >= temp["exp"]:
            res["reason"] = "temporary credentials expired"
            res["code"] = "ExpiredTokenException"
            return res
    if secret is None:
        res["reason"] = "unknown access key %s" % ak
        res["code"] = "UnrecognizedClientException"
        return res
    payload = hashlib.sha256(body).hexdigest()
    declared = headers.get("X-Amz-Content-SHA256")
    if declared is not None and declared != "UNSIGNED-PAYLOAD" and declared != payload:
        res["reason"] = "x-amz-content-sha256 does not match the body"
        res["code"] = "XAmzContentSHA256Mismatch"
        return res
    if service == "s3" and declared is None:
        res["reason"] = "S3 request without x-amz-content-sha256"
        res["code"] = "InvalidRequest"
        return res
    hmap = HTTPHeaders()
    for h in signed:
        values = headers.get_all(h)
        if not values:
            res["reason"] = "signed header %s is not in the request" % h
            return res
        for v in values:
            hmap[h] = v
    base = S3SigV4Auth if service == "s3" else SigV4Auth

    class Checker(base):
        def headers_to_sign(self, request):
            return hmap

        def canonical_query_string(self, request):
            return canonical_query(query)

        def payload(self, request):
            return payload

    # S3 decodes the path and encodes it once; the other services encode
    # the path as received once more (SigV4Auth below), so a %2F stays
    # inside its segment.
    path = quote(unquote(raw_path), safe="/~") if service == "s3" else raw_path
    req = AWSRequest(method=method, url="https://" + headers.get("Host", "") + path, data=body)
    for k, v in headers.items():
        req.headers[k] = v
    req.context["timestamp"] = amzdate
    chk = Checker(Credentials(ak, secret), service, region)
    creq = chk.canonical_request(req)
    want = chk.signature(chk.string_to_sign(req, creq), req)
    if want != signature:
        res["reason"] = "signature mismatch; canonical request was:\n" + creq
        return res
    res["valid"] = True
    return res


def protocol(service, headers, body, query):
    if service == "s3":
        return "s3"
    ctype = headers.get("Content-Type", "")
    if "x-www-form-urlencoded" in ctype and b"Action=" in body or "Action=" in query:
        return "query"
    return "json"


def error_reply(proto, status, code, message):
    """(status, headers, body) of an AWS-shaped error."""
    rid = str(uuid.uuid4())
    if proto == "s3":
        b = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>" % (escape(code), escape(message), rid)
        return status, {"Content-Type": "application/xml", "x-amz-request-id": rid}, b.encode()
    if proto == "query":
        kind = "Sender" if status < 500 else "Receiver"
        b = "<ErrorResponse xmlns=\"http://webservices.amazon.com/AWSFault/2005-15-09\"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>" % (kind, escape(code), escape(message), rid)
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, b.encode()
    return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": rid,
                    "x-amzn-ErrorType": code}, json.dumps({"__type": code, "message": message}).encode()


def json_reply(obj, status=200, ctype="application/x-amz-json-1.1"):
    return status, {"Content-Type": ctype, "x-amzn-RequestId": str(uuid.uuid4())}, json.dumps(obj).encode()


def sts_reply(action, inner, xmlns="https://sts.amazonaws.com/doc/2011-06-15/"):
    """A query-protocol (XML) answer; STS's by default."""
    rid = str(uuid.uuid4())
    b = "<%sResponse xmlns=\"%s\"><%sResult>%s</%sResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>" % (action, xmlns, action, inner, action, rid, action)
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, b.encode()


def creds_xml(ak, c):
    return "<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>" % (ak, escape(c["secret"]), escape(c["token"]), iso(c["exp"]))


def split_batch(items, every):
    """(kept, dropped) lists of (index, item): every `every`-th entry is dropped."""
    kept, dropped = [], []
    for i, it in enumerate(items):
        (dropped if (i + 1) % every == 0 else kept).append((i, it))
    return kept, dropped


class Request:
    """What a plugin's serve(req) / control(req) gets.

    method, path (decoded), raw_path, query (a dict), headers (case-
    insensitive), body (bytes), doc (the JSON body, {} when none), op (the
    X-Amz-Target operation, else ""), service (signing name), st (State:
    st.lock guards st.svc, a dict plugins keep their state in, by service).
    Returns of serve: (status, headers dict, body bytes), or None for the
    recorder's default (200 {}).
    """

    def __init__(self, handler, st, service, proto, path, query, body):
        self.h, self.st, self.service, self.proto = handler, st, service, proto
        self.method, self.raw_path, self.path = handler.command, path, unquote(path)
        self.query = dict(parse_qsl(query, keep_blank_values=True))
        self.headers, self.body = handler.headers, body
        self.op = handler.headers.get("X-Amz-Target", "").split(".")[-1]
        try:
            self.doc = json.loads(body) if body else {}
        except ValueError:
            self.doc = {}

    def state(self):
        """This service's dict in st.svc (hold st.lock while using it)."""
        return self.st.svc.setdefault(self.service, {})

    def partial(self):
        """Consumes one /__recorder/partial rule for this service: None, or
        {"every": N, "code": CODE or None, "count": left}: the plugin then
        fails every N-th entry of this batch (code: its error code)."""
        return self.st.take(self.st.partials, self.service)

    def json(self, obj, status=200, ctype="application/x-amz-json-1.1"):
        return json_reply(obj, status, ctype)

    def error(self, status, code, message):
        return error_reply(self.proto, status, code, message)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    server_version = "recorder"

    def log_message(self, fmt, *a):
        if self.server.st.args.verbose:
            sys.stderr.write("recorder: " + fmt % a + "\n")

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline().strip():
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def setup(self):
        super().setup()
        # Headers and body go out as two writes: without TCP_NODELAY the
        # body waits for the client's delayed ACK of the headers (about
        # 40 ms), which caps a client with few requests in flight.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = lambda self: self.dispatch()

    def dispatch(self):
        st = self.server.st
        body = self.read_body()
        u = urlsplit(self.path)
        path, query = u.path, u.query
        if path.startswith("/__recorder/") and self.server.kind != "http":
            return self.send(*self.control(st, path, query, body))
        if self.server.kind == "http":
            service, sig = ("imds" if path.startswith("/latest/") else "container"), {"valid": None, "reason": "plain HTTP"}
            reply = self.take_fail(st, service, "json", explicit=True) or self.credentials(st, path)
        else:
            sig = verify(st, self.command, path, query, self.headers, body)
            service = sig["service"] or self.guess_service(path, body)
            proto = protocol(service, self.headers, body, query)
            reply = self.check(st, sig, service, proto, path, query, body)
            if reply is None:
                reply = self.take_fail(st, service, proto)
            if reply is None:
                try:
                    reply = self.forward(st, service, body) if self.server.upstream else self.serve(st, service, path, query, body)
                except Exception as e:  # a bug here must not look like a network failure
                    traceback.print_exc()
                    reply = error_reply(proto, 500, "InternalFailure", "recorder: %r" % e)
        self.send(*reply)
        text = None
        try:
            text = body.decode()
        except UnicodeDecodeError:
            pass
        st.record({"time": time.time(), "listener": self.server.kind, "port": self.server.server_address[1],
                   "upstream": self.server.upstream, "method": self.command, "path": path, "query": query,
                   "headers": {k.lower(): ", ".join(self.headers.get_all(k)) for k in dict.fromkeys(self.headers.keys())},
                   "body": text, "body_b64": base64.b64encode(body).decode(), "service": service,
                   "target": self.headers.get("X-Amz-Target"), "access_key": sig.get("access_key"),
                   "sigv4": {"valid": sig["valid"], "reason": sig["reason"]}, "status": reply[0],
                   "role_arn": getattr(self, "assumed_role", None),
                   "reply": reply[2].decode(errors="replace") if len(reply[2]) <= 65536 else None})

    def guess_service(self, path, body):
        target = self.headers.get("X-Amz-Target", "")
        for prefix, svc in TARGET_SERVICES.items():
            if target.startswith(prefix):
                return svc
        if path.startswith("/2015-03-31/functions/"):
            return "lambda"
        if b"Action=AssumeRole" in body:
            return "sts"
        return None

    def check(self, st, sig, service, proto, path, query, body):
        """None when the request may proceed, else the error reply."""
        if sig["valid"]:
            return None
        if sig["reason"] == "missing":
            params = dict(parse_qsl(query)) | dict(parse_qsl(body.decode("latin-1")))
            if service == "sts" and params.get("Action") == "AssumeRoleWithWebIdentity" and not self.server.upstream:
                return None  # this one is not signed in real life
            if st.args.no_require_sig and not self.server.upstream:
                return None
            if proto == "s3":
                return error_reply(proto, 403, "AccessDenied", "Access Denied")
            code = "MissingAuthenticationToken" if proto == "query" else "MissingAuthenticationTokenException"
            return error_reply(proto, 403, code, "Missing Authentication Token")
        code = sig.get("code") or ("SignatureDoesNotMatch" if proto in ("s3", "query") else "InvalidSignatureException")
        msg = sig["reason"]
        if code == "ExpiredTokenException":
            msg = "The security token included in the request is expired"
            if proto == "s3":
                code = "ExpiredToken"
        elif code == "UnrecognizedClientException" and proto != "json":
            code = {"s3": "InvalidAccessKeyId", "query": "InvalidClientTokenId"}[proto]
        elif code in ("InvalidSignatureException", "SignatureDoesNotMatch"):
            msg = ("The request signature we calculated does not match the signature you provided. "
                   "Check your AWS Secret Access Key and signing method. (recorder: %s)" % sig["reason"])
        return error_reply(proto, 400 if code in ("InvalidRequest", "XAmzContentSHA256Mismatch") else 403, code, msg)

    def take_fail(self, st, service, proto, explicit=False):
        with st.lock:
            rule = None
            for r in st.fails:
                if r["count"] > 0 and (r["service"] == service or (r["service"] is None and not explicit)):
                    r["count"] -= 1
                    rule = dict(r)
                    break
        if rule is None:
            return None
        code = rule["code"] or DEFAULT_CODES.get(rule["status"], "InternalFailure")
        s, h, b = error_reply(proto, rule["status"], code, "injected by recorder")
        if rule["retry_after"]:
            h["Retry-After"] = rule["retry_after"]
        return s, h, b

    # ---- services answered by the recorder itself ----
    def serve(self, st, service, path, query, body):
        if service in PLUGINS:
            proto = protocol(service, self.headers, body, query)
            reply = PLUGINS[service].serve(Request(self, st, service, proto, path, query, body))
            return reply or json_reply({}, ctype="application/json")
        target = self.headers.get("X-Amz-Target", "")
        op = target.split(".")[-1]
        try:
            doc = json.loads(body) if body and self.headers.get("Content-Type", "").find("json") >= 0 else {}
        except ValueError:
            doc = {}
        if service == "firehose":
            if op == "PutRecord":
                return json_reply({"RecordId": secrets.token_hex(28), "Encrypted": False})
            if op == "PutRecordBatch":
                n = len(doc.get("Records", []))
                rule = st.take(st.partials, service)
                every = rule["every"] if rule else 0
                resp = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
                        if every and (i + 1) % every == 0 else {"RecordId": secrets.token_hex(28)} for i in range(n)]
                failed = sum(1 for r in resp if "ErrorCode" in r)
                return json_reply({"FailedPutCount": failed, "Encrypted": False, "RequestResponses": resp})
        if service == "lambda":
            m = re.match(r"^/2015-03-31/functions/([^/]+)/invocations$", path)
            if m:
                name = unquote(m.group(1))
                short = name.split(":")[6] if name.startswith("arn:") and name.count(":") >= 6 else name.split(":")[0]
                if name in st.missing_fns or short in st.missing_fns:
                    s, h, b = json_reply({"Type": "User", "message": "Function not found: arn:aws:lambda:us-east-1:%s:function:%s" % (ACCOUNT, name)}, 404, "application/json")
                    h["x-amzn-ErrorType"] = "ResourceNotFoundException"
                    return s, h, b
                kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
                if kind == "Event":
                    return 202, {"x-amzn-RequestId": str(uuid.uuid4())}, b""
                if kind == "DryRun":
                    return 204, {"x-amzn-RequestId": str(uuid.uuid4())}, b""
                if name in st.failing_fns or short in st.failing_fns:
                    # The function itself failed: Lambda still answers 200.
                    return 200, {"Content-Type": "application/json", "X-Amz-Function-Error": "Unhandled"}, \
                        json.dumps({"errorMessage": "boom in %s" % short, "errorType": "Error"}).encode()
                # RequestResponse: the function echoes its event (null when empty).
                return 200, {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}, body or b"null"
        if service == "sts":
            return self.sts(st, dict(parse_qsl(query)) | dict(parse_qsl(body.decode("latin-1"))))
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded") and b"Action=" in body:
            p = dict(parse_qsl(body.decode("latin-1")))
            return sts_reply(p.get("Action", "Action"), "", "https://%s.amazonaws.com/doc/%s/" % (service, p.get("Version", "")))
        return json_reply({}, ctype="application/json")

    def sts(self, st, p):
        action = p.get("Action")
        if action not in ("AssumeRole", "AssumeRoleWithWebIdentity", "GetCallerIdentity"):
            return error_reply("query", 400, "InvalidAction", "Could not find operation %s" % action)
        if action == "GetCallerIdentity":
            return sts_reply(action, "<Arn>arn:aws:iam::%s:user/test</Arn><UserId>AIDATEST</UserId><Account>%s</Account>" % (ACCOUNT, ACCOUNT))
        role, session = p.get("RoleArn"), p.get("RoleSessionName")
        if not role or not session:
            return error_reply("query", 400, "ValidationError", "RoleArn and RoleSessionName are required")
        if action == "AssumeRoleWithWebIdentity":
            tok, want = p.get("WebIdentityToken", ""), None
            if st.args.web_identity_token_file:
                with open(st.args.web_identity_token_file) as f:
                    want = f.read().strip()
            if not tok or (want is not None and tok.strip() != want):
                return error_reply("query", 400, "InvalidIdentityToken", "The web identity token is not valid")
        ak, c = st.issue(role, action)
        self.assumed_role = role
        with st.lock:
            st.assumed.append({"action": action, "role_arn": role, "session_name": session, "access_key": ak,
                               "caller": self.headers.get("Authorization", "").split("Credential=")[-1].split("/")[0] or None})
        name = role.rsplit("/", 1)[-1]
        user = "<AssumedRoleUser><AssumedRoleId>AROATEST:%s</AssumedRoleId><Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn></AssumedRoleUser>" % (escape(session), ACCOUNT, escape(name), escape(session))
        extra = "<SubjectFromWebIdentityToken>test-subject</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience><Provider>test</Provider>" if action != "AssumeRole" else "<PackedPolicySize>6</PackedPolicySize>"
        return sts_reply(action, creds_xml(ak, c) + user + extra)

    # ---- proxy ----
    def forward(self, st, service, body):
        rule = st.take(st.partials, service) if self.headers.get("X-Amz-Target", "").split(".")[-1] in ("PutRecords", "SendMessageBatch", "BatchWriteItem") else None
        merge = None
        if rule:
            try:
                body, merge = self.rewrite_batch(body, rule["every"])
            except (ValueError, KeyError, AttributeError):  # not JSON (e.g. CBOR): forwarded as it is
                merge = None
        if body is None:  # every entry dropped: nothing to forward
            return json_reply(merge(None), ctype=self.headers.get("Content-Type", "application/x-amz-json-1.0"))
        up = urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "expect", "content-length")}
        hdrs["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            return error_reply("json", 502, "BadGateway", "upstream %s: %s" % (self.server.upstream, e))
        finally:
            conn.close()
        out = {k: v for k, v in r.getheaders() if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length", "date")}
        if merge and r.status == 200:
            data = json.dumps(merge(json.loads(data))).encode()
        return r.status, out, data

    def rewrite_batch(self, body, every):
        """Drops every `every`-th entry of a batch; returns (new body or None, merge(upstream answer))."""
        doc = json.loads(body)
        op = self.headers["X-Amz-Target"].split(".")[-1]
        if op == "PutRecords":
            kept, dropped = split_batch(doc.get("Records", []), every)
            doc["Records"] = [it for _, it in kept]

            def merge(ans):
                got = iter((ans or {}).get("Records", []))
                failed = {i for i, _ in dropped}
                recs = [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard (injected by recorder)."}
                        if i in failed else next(got) for i in range(len(kept) + len(dropped))]
                return {"FailedRecordCount": sum(1 for r in recs if "ErrorCode" in r), "Records": recs}
        elif op == "SendMessageBatch":
            kept, dropped = split_batch(doc.get("Entries", []), every)
            doc["Entries"] = [it for _, it in kept]

            def merge(ans):
                ans = ans or {"Successful": []}
                ans.setdefault("Failed", []).extend({"Id": it.get("Id"), "SenderFault": False, "Code": "InternalError",
                                                     "Message": "injected by recorder"} for _, it in dropped)
                return ans
        else:  # BatchWriteItem
            flat = [(t, it) for t, items in doc.get("RequestItems", {}).items() for it in items]
            kept, dropped = split_batch(flat, every)
            doc["RequestItems"] = {}
            for _, (t, it) in kept:
                doc["RequestItems"].setdefault(t, []).append(it)

            def merge(ans):
                ans = ans or {}
                un = ans.setdefault("UnprocessedItems", {})
                for _, (t, it) in dropped:
                    un.setdefault(t, []).append(it)
                return ans
        return (json.dumps(doc).encode() if kept else None), merge

    # ---- plain-HTTP credential endpoints ----
    def credentials(self, st, path):
        a = st.args
        if path == "/latest/api/token" and self.command == "PUT":
            try:
                ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
                assert 1 <= ttl <= 21600
            except (ValueError, AssertionError):
                return 400, {"Content-Type": "text/plain"}, b"Bad Request"
            tok = secrets.token_urlsafe(40)
            with st.lock:
                st.imds_tokens[tok] = time.time() + ttl
            return 200, {"Content-Type": "text/plain", "X-aws-ec2-metadata-token-ttl-seconds": str(ttl)}, tok.encode()
        if path.startswith("/latest/"):
            tok = self.headers.get("X-aws-ec2-metadata-token")
            with st.lock:
                good = tok in st.imds_tokens and st.imds_tokens[tok] > time.time()
            if not good:
                return 401, {"Content-Type": "text/plain"}, b"Unauthorized"
            base = "/latest/meta-data/iam/security-credentials/"
            if path == base:
                return 200, {"Content-Type": "text/plain"}, a.imds_role.encode()
            if path == base + a.imds_role:
                with st.lock:
                    cur = st.imds_creds
                if cur is None or cur[1]["exp"] - time.time() < 60:
                    cur = st.issue("arn:aws:iam::%s:role/%s" % (ACCOUNT, a.imds_role), "imds")
                    with st.lock:
                        st.imds_creds = cur
                ak, c = cur
                return json_reply({"Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC", "AccessKeyId": ak,
                                   "SecretAccessKey": c["secret"], "Token": c["token"], "Expiration": iso(c["exp"])}, ctype="text/plain")
            if path == "/latest/meta-data/placement/region":
                return 200, {"Content-Type": "text/plain"}, a.region.encode()
            if path == "/latest/dynamic/instance-identity/document":
                return json_reply({"region": a.region, "accountId": ACCOUNT, "instanceId": "i-0123456789abcdef0"}, ctype="text/plain")
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        if path == "/creds" and self.command == "GET":
            if a.container_token is not None and self.headers.get("Authorization") != a.container_token:
                return json_reply({"code": "InvalidToken", "message": "bad Authorization"}, 401, "application/json")
            ak, c = st.issue("arn:aws:iam::%s:role/container" % ACCOUNT, "container")
            return json_reply({"AccessKeyId": ak, "SecretAccessKey": c["secret"], "Token": c["token"], "Expiration": iso(c["exp"]),
                               "RoleArn": c["role"]}, ctype="application/json")
        return 404, {"Content-Type": "text/plain"}, b"Not Found"

    # ---- control ----
    def control(self, st, path, query, body):
        q = dict(parse_qsl(query))
        ok = json_reply({"ok": True}, ctype="application/json")
        m = re.match(r"^/__recorder/svc/([^/]+)/", path)
        if m and m.group(1) in PLUGINS and hasattr(PLUGINS[m.group(1)], "control"):
            return PLUGINS[m.group(1)].control(Request(self, st, m.group(1), "json", path, query, body)) or ok
        if path == "/__recorder/requests":
            if self.command == "DELETE":
                with st.lock:
                    st.requests.clear()
                return ok
            with st.lock:
                return json_reply(list(st.requests), ctype="application/json")
        if path == "/__recorder/fail" and self.command == "POST":
            with st.lock:
                st.fails.append({"status": int(q.get("status", 503)), "count": int(q.get("count", 1)), "code": q.get("code"),
                                 "service": q.get("service"), "retry_after": q.get("retry_after")})
            return ok
        if path == "/__recorder/partial" and self.command == "POST":
            with st.lock:
                st.partials.append({"service": q.get("service"), "count": int(q.get("count", 1)), "every": max(1, int(q.get("every", 2))),
                                    "code": q.get("code")})
            return ok
        if path == "/__recorder/reset" and self.command == "POST":
            with st.lock:
                st.fails.clear(); st.partials.clear(); st.missing_fns.clear(); st.failing_fns.clear(); st.svc.clear()
            return ok
        if path == "/__recorder/expire" and self.command == "POST":
            with st.lock:
                for c in st.temp.values():
                    c["exp"] = min(c["exp"], time.time() - 1)
            return ok
        if path == "/__recorder/lambda/failing":
            with st.lock:
                (st.failing_fns.discard if self.command == "DELETE" else st.failing_fns.add)(q.get("name", ""))
            return ok
        if path == "/__recorder/lambda/missing":
            with st.lock:
                (st.missing_fns.discard if self.command == "DELETE" else st.missing_fns.add)(q.get("name", ""))
            return ok
        if path == "/__recorder/assumed":
            with st.lock:
                return json_reply(list(st.assumed), ctype="application/json")
        if path == "/__recorder/creds" and self.command == "POST":
            ak, c = st.issue(q.get("role", "arn:aws:iam::%s:role/test" % ACCOUNT), "control")
            return json_reply({"AccessKeyId": ak, "SecretAccessKey": c["secret"], "SessionToken": c["token"], "Expiration": iso(c["exp"])}, ctype="application/json")
        return json_reply({"message": "unknown control endpoint"}, 404, "application/json")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, kind, st, upstream=None, ctx=None):
        super().__init__(("127.0.0.1", port), Handler)
        self.kind, self.st, self.upstream = kind, st, upstream
        if ctx:
            self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--http-port", type=int)
    ap.add_argument("--proxy", action="append", default=[], metavar="LISTEN_PORT=http://127.0.0.1:UPSTREAM_PORT")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cred", action="append", metavar="AKID:SECRET")
    ap.add_argument("--log", metavar="FILE")
    ap.add_argument("--ready-file")
    ap.add_argument("--temp-creds-ttl", type=int, default=3600)
    ap.add_argument("--web-identity-token-file")
    ap.add_argument("--container-token")
    ap.add_argument("--imds-role", default="iotrules-test-role")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--no-require-sig", action="store_true", help="accept unsigned requests on the main port (HTTPS action)")
    ap.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process is gone (tests)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    load_plugins()
    st = State(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    servers = [Server(args.port, "main", st, ctx=ctx)]
    for p in args.proxy:
        port, up = p.split("=", 1)
        servers.append(Server(int(port), "proxy", st, upstream=up.rstrip("/"), ctx=ctx))
    if args.http_port is not None:
        servers.append(Server(args.http_port, "http", st))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ready = {"port": servers[0].server_address[1], "pid": os.getpid(),
             "proxies": [{"port": s.server_address[1], "upstream": s.upstream} for s in servers if s.kind == "proxy"],
             "http_port": next((s.server_address[1] for s in servers if s.kind == "http"), None)}
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            json.dump(ready, f)
        os.rename(args.ready_file + ".tmp", args.ready_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            break
    stoppers = [threading.Thread(target=s.shutdown) for s in servers]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join()
    for s in servers:
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
