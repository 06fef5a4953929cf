"""svc_cloudwatch: the recorder's CloudWatch Logs ("logs", JSON 1.1) and
CloudWatch ("monitoring", query protocol) for the cloudwatchLogs,
cloudwatchMetric and cloudwatchAlarm sinks, with the request checks and
answers of target-apis.json and the services' documented limits.

Logs:
  CreateLogStream      creates the stream (kept in req.state()["streams"]);
                       ResourceAlreadyExistsException when it exists.
  PutLogEvents         ResourceNotFoundException for a stream not created
                       yet; InvalidParameterException for what the service
                       refuses as a whole (no events, more than 10,000,
                       more than 1,048,576 bytes counting 26 per event,
                       events out of chronological order or spanning more
                       than 24 h, a timestamp that is not a whole number
                       >= 0, an empty or non-string message).  Otherwise
                       200 {"nextSequenceToken", "rejectedLogEventsInfo"
                       when events were rejected}: events more than 14
                       days old or 2 h ahead, as the service does, and with
                       a /__recorder/partial rule (every=K, code=tooOld
                       (default) | tooNew | expired) the first (tooOld,
                       expired) or last (tooNew) n // K events (at least
                       1) of the request: the API reports index ranges of
                       the sorted events, not entries (start index
                       inclusive, end indexes exclusive).
  Either: ResourceNotFoundException "The specified log group does not
  exist." for a group made missing with the control below.
CloudWatch (form body, XML answers):
  PutMetricData        Namespace (not "AWS/..."), MetricData.member.N.
                       {MetricName, Value (finite), Unit (StandardUnit),
                       Timestamp (ISO 8601, at most 2 weeks old and 2 h
                       ahead)}: MissingParameter / InvalidParameterValue.
  SetAlarmState        AlarmName, StateValue (OK | ALARM |
                       INSUFFICIENT_DATA: else ValidationError), StateReason
                       (<= 1023): 404 ResourceNotFound for a missing alarm.
Controls (/__recorder/svc/...):
  logs/missing-group?name=G         POST: G does not exist; DELETE: it does
  logs/streams                      GET: [[group, stream], ...] created
  monitoring/missing-alarm?name=A   POST / DELETE, as for groups
Every request is recorded by the recorder itself; nothing else is kept.
"""
import datetime
import math
import secrets
import time
import uuid
from urllib.parse import parse_qsl

SERVICES = ("logs", "monitoring")

DAY_MS = 86400000
MAX_EVENTS = 10000
MAX_BYTES = 1048576
EVENT_OVERHEAD = 26
TOO_OLD_MS = 14 * DAY_MS
TOO_NEW_MS = 2 * 3600 * 1000
XMLNS = "http://monitoring.amazonaws.com/doc/2010-08-01/"
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
UNITS = ("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
         "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
         "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
         "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
         "Count/Second", "None")


def serve(req):
    return logs(req) if req.service == "logs" else monitoring(req)


def control(req):
    what = req.path.rstrip("/").rsplit("/", 1)[-1]
    with req.st.lock:
        s = req.state()
        if what in ("missing-group", "missing-alarm"):
            names = s.setdefault("missing", set())
            (names.discard if req.method == "DELETE" else names.add)(req.query.get("name", ""))
            return None
        if what == "streams":
            return req.json(sorted(list(k) for k in s.get("streams", ())), ctype="application/json")
    return req.json({"message": "unknown control " + req.path}, 404, "application/json")


# ---- CloudWatch Logs ----

def logs(req):
    d, op = req.doc, req.op
    if op not in ("PutLogEvents", "CreateLogStream"):
        return req.error(400, "UnknownOperationException", "unknown operation %r" % op)
    group, stream = d.get("logGroupName"), d.get("logStreamName")
    if not isinstance(group, str) or not group or not isinstance(stream, str) or not stream:
        return req.error(400, "InvalidParameterException", "logGroupName and logStreamName are required")
    with req.st.lock:
        s = req.state()
        missing = group in s.get("missing", ())
        streams = s.setdefault("streams", set())
        exists = (group, stream) in streams
        if op == "CreateLogStream" and not missing:
            streams.add((group, stream))
    if missing:
        return req.error(400, "ResourceNotFoundException", "The specified log group does not exist.")
    if op == "CreateLogStream":
        if exists:
            return req.error(400, "ResourceAlreadyExistsException", "The specified log stream already exists")
        return 200, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}, b""
    if not exists:
        return req.error(400, "ResourceNotFoundException", "The specified log stream does not exist.")
    events = d.get("logEvents")
    why = check_events(events)
    if why:
        return req.error(400, "InvalidParameterException", why)
    n, now = len(events), time.time() * 1000
    new_from = next((i for i, e in enumerate(events) if e["timestamp"] > now + TOO_NEW_MS), n)
    old_to = sum(1 for e in events if e["timestamp"] < now - TOO_OLD_MS)   # sorted: a prefix
    expired_to = 0
    rule = req.partial()
    if rule:
        k = max(1, n // rule["every"])
        code = rule.get("code") or "tooOld"
        if code == "tooNew":
            new_from = min(new_from, n - k)
        elif code == "expired":
            expired_to = k
        else:
            old_to = max(old_to, k)
    info = {}
    if new_from < n:
        info["tooNewLogEventStartIndex"] = new_from
    if old_to:
        info["tooOldLogEventEndIndex"] = old_to
    if expired_to:
        info["expiredLogEventEndIndex"] = expired_to
    out = {"nextSequenceToken": secrets.token_hex(28)}
    if info:
        out["rejectedLogEventsInfo"] = info
    return req.json(out)


def check_events(events):
    """Why PutLogEvents refuses the whole request, or None."""
    if not isinstance(events, list) or not events:
        return "logEvents must hold at least 1 event"
    if len(events) > MAX_EVENTS:
        return "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: " \
               "Member must have length less than or equal to 10000"
    size = 0
    for e in events:
        t, m = e.get("timestamp") if isinstance(e, dict) else None, e.get("message") if isinstance(e, dict) else None
        if not isinstance(t, int) or isinstance(t, bool) or t < 0 or not isinstance(m, str) or not m:
            return "every log event needs a timestamp (long >= 0) and a non-empty message"
        size += len(m.encode()) + EVENT_OVERHEAD
    if size > MAX_BYTES:
        return "Upload too large: %d bytes exceeds limit of %d" % (size, MAX_BYTES)
    if any(a["timestamp"] > b["timestamp"] for a, b in zip(events, events[1:])):
        return "Log events in a single PutLogEvents request must be in chronological order."
    if events[-1]["timestamp"] - events[0]["timestamp"] > DAY_MS:
        return "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
    return None


# ---- CloudWatch (query protocol) ----

def xml_ok(action):
    rid = str(uuid.uuid4())
    body = '<%sResponse xmlns="%s"><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>' % (
        action, XMLNS, rid, action)
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode()


def monitoring(req):
    p = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
    action = p.get("Action")
    if p.get("Version") != "2010-08-01" or action not in ("PutMetricData", "SetAlarmState"):
        return req.error(400, "InvalidAction", "Could not find operation %s for version %s" % (action, p.get("Version")))
    why = (put_metric_data if action == "PutMetricData" else set_alarm_state)(req, p)
    return req.error(*why) if why else xml_ok(action)


def bad(name, value):
    return 400, "InvalidParameterValue", "The value %s for parameter %s is invalid." % (value, name)


def put_metric_data(req, p):
    ns = p.get("Namespace")
    if not ns:
        return 400, "MissingParameter", "The parameter Namespace is required."
    if ns.startswith(":") or ns.startswith("AWS/") or len(ns) > 255:
        return bad("Namespace", ns)
    members = sorted({int(k.split(".")[2]) for k in p if k.startswith("MetricData.member.")})
    if not members:
        return 400, "MissingParameter", "The parameter MetricData is required."
    if members != list(range(1, len(members) + 1)) or len(members) > 1000:
        return bad("MetricData", "members %s" % members)
    now = time.time()
    for i in members:
        f = "MetricData.member.%d." % i
        if not p.get(f + "MetricName"):
            return 400, "MissingParameter", "The parameter %sMetricName is required." % f
        try:
            v = float(p.get(f + "Value", ""))
        except ValueError:
            return bad(f + "Value", p.get(f + "Value"))
        if not math.isfinite(v):
            return bad(f + "Value", p.get(f + "Value"))
        if f + "Unit" in p and p[f + "Unit"] not in UNITS:
            return 400, "InvalidParameterValue", "The parameter %sUnit must be a value in the set [ %s ]." % (f, ", ".join(UNITS))
        if f + "Timestamp" in p:
            try:
                t = datetime.datetime.fromisoformat(p[f + "Timestamp"].replace("Z", "+00:00")).timestamp()
            except ValueError:
                return bad(f + "Timestamp", p[f + "Timestamp"])
            if t < now - TOO_OLD_MS / 1000:
                return 400, "InvalidParameterValue", "The parameter %sTimestamp must specify a time no more than two weeks in the past." % f
            if t > now + TOO_NEW_MS / 1000:
                return 400, "InvalidParameterValue", "The parameter %sTimestamp must specify a time no more than two hours in the future." % f
    return None


def set_alarm_state(req, p):
    for name in ("AlarmName", "StateValue", "StateReason"):
        if name not in p:
            return 400, "MissingParameter", "The parameter %s is required." % name
    if p["StateValue"] not in STATES:
        return 400, "ValidationError", "1 validation error detected: Value '%s' at 'stateValue' failed to satisfy " \
            "constraint: Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]" % p["StateValue"]
    if len(p["StateReason"]) > 1023 or not p["AlarmName"] or len(p["AlarmName"]) > 255:
        return 400, "ValidationError", "AlarmName must be 1-255 and StateReason at most 1023 characters"
    with req.st.lock:
        missing = p["AlarmName"] in req.state().get("missing", ())
    if missing:
        return 404, "ResourceNotFound", "Alarm %s not found" % p["AlarmName"]
    return None
