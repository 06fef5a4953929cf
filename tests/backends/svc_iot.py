"""IoT Analytics, IoT Events data and IoT SiteWise data for the recorder:
the three batch puts of the iotAnalytics, iotEvents and iotSiteWise
actions, answered with the shapes of ../shared/spec/target-apis.json.

  iotanalytics   POST /messages/batch   {channelName, messages: [{messageId, payload}]}
                 -> 200 {"batchPutMessageErrorEntries": [{messageId, errorCode, errorMessage}]}
  ioteventsdata  POST /inputs/messages  {messages: [{messageId, inputName, payload}]}
                 -> 200 {"BatchPutMessageErrorEntries": [...]}
  iotsitewise    POST /properties       {entries: [{entryId, propertyAlias | assetId + propertyId,
                                          propertyValues: [{value, timestamp, quality}]}]}
                 -> 200 {"errorEntries": [{entryId, errors: [{errorCode, errorMessage, timestamps}]}]}

A request the API would refuse as a whole (a missing or malformed member,
a value of the wrong JSON type, more entries than the API takes, IoT
Events payloads over 1 KiB, ids repeated in one call) is answered 400
InvalidRequestException, naming what is wrong.  Per entry: a name set
missing (below) fails its entries with ResourceNotFoundException (for IoT
Analytics the channel fails the whole request, 404, as that API does); a
SiteWise timestamp outside [now - 7 days, now + 10 min] fails its entry
with TimestampOutOfRangeException; a /__recorder/partial rule fails every
N-th entry of the next batches with its code (default
InternalFailureException).

Controls (/__recorder/svc/<service>/...):
  GET    accepted            the entries accepted so far, in order, each with
                             its request's Host and (messages) its decoded payload
  POST   missing?name=N      channel / input / property alias or assetId N is missing
  DELETE missing?name=N      ... exists again
"""
import base64
import binascii
import collections
import json
import re
import sys
import time

SERVICES = ("iotanalytics", "ioteventsdata", "iotsitewise")

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ROUTES = {"iotanalytics": "/messages/batch", "ioteventsdata": "/inputs/messages", "iotsitewise": "/properties"}
PAST_S, FUTURE_S = 7 * 86400, 600


class Invalid(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Invalid(what)


def is_int(v):
    return type(v) is int


def decode(b64):
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise Invalid("payload is not base64")


def check_messages(doc, analytics):
    msgs = doc.get("messages")
    need(isinstance(msgs, list) and msgs, "messages: a non-empty list is required")
    need(len(msgs) <= (100 if analytics else 10), "messages: more than %d" % (100 if analytics else 10))
    ids = [m.get("messageId") if isinstance(m, dict) else None for m in msgs]
    need(len(set(map(str, ids))) == len(ids), "messageId: each must be unique within the batch")
    total = 0
    for m in msgs:
        mid = m.get("messageId")
        if analytics:
            need(isinstance(mid, str) and 1 <= len(mid) <= 128 and mid.isascii(), "messageId: 1-128 ASCII characters")
        else:
            need(isinstance(mid, str) and re.match(r"^[a-zA-Z0-9_-]{1,64}$", mid), "messageId: ^[a-zA-Z0-9_-]+$, 1-64")
            name = m.get("inputName")
            need(isinstance(name, str) and re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$", name),
                 "inputName: ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$, 1-128")
        need(isinstance(m.get("payload"), str), "payload: a base64 blob is required")
        total += len(decode(m["payload"]))
    need(analytics or total <= 1024, "messages: the payloads exceed 1024 bytes per batch")
    return msgs


def check_entries(doc):
    ents = doc.get("entries")
    need(isinstance(ents, list) and ents, "entries: a non-empty list is required")
    need(len(ents) <= 10, "entries: more than 10")
    ids = [e.get("entryId") if isinstance(e, dict) else None for e in ents]
    need(len(set(map(str, ids))) == len(ids), "entryId: each must be unique within the batch")
    for e in ents:
        need(isinstance(e.get("entryId"), str) and re.match(r"^[a-zA-Z0-9_-]{1,64}$", e["entryId"]),
             "entryId: ^[a-zA-Z0-9_-]+$, 1-64")
        alias, asset, prop = e.get("propertyAlias"), e.get("assetId"), e.get("propertyId")
        need(alias is None or (isinstance(alias, str) and 1 <= len(alias) <= 2048), "propertyAlias: 1-2048 characters")
        for x in (asset, prop):
            need(x is None or (isinstance(x, str) and UUID.match(x)), "assetId/propertyId: a UUID")
        need(alias is not None or (asset is not None and prop is not None),
             "an entry needs a propertyAlias or an assetId and a propertyId")
        vals = e.get("propertyValues")
        need(isinstance(vals, list) and 1 <= len(vals) <= 10, "propertyValues: 1-10 values")
        for v in vals:
            val, ts = v.get("value"), v.get("timestamp")
            need(isinstance(val, dict) and len(val) == 1, "value: exactly one member")
            (k, x), = val.items()
            need((k == "stringValue" and isinstance(x, str)) or
                 (k == "integerValue" and is_int(x) and -2 ** 31 <= x < 2 ** 31) or
                 (k == "doubleValue" and (is_int(x) or type(x) is float)) or
                 (k == "booleanValue" and type(x) is bool), "value: %s of the wrong type (%r)" % (k, x))
            need(isinstance(ts, dict) and is_int(ts.get("timeInSeconds")) and ts["timeInSeconds"] >= 1,
                 "timestamp.timeInSeconds: a positive integer is required")
            need(set(ts) <= {"timeInSeconds", "offsetInNanos"}, "timestamp: unknown member")
            need("offsetInNanos" not in ts or (is_int(ts["offsetInNanos"]) and 0 <= ts["offsetInNanos"] <= 999999999),
                 "timestamp.offsetInNanos: an integer 0-999999999")
            need(v.get("quality") in (None, "GOOD", "BAD", "UNCERTAIN"), "quality: GOOD, BAD or UNCERTAIN")
            need(set(v) <= {"value", "timestamp", "quality"}, "propertyValue: unknown member")
    return ents


def serve(req):
    if req.method != "POST" or req.path != ROUTES[req.service]:
        return req.error(404, "ResourceNotFoundException", "recorder: no such API %s %s" % (req.method, req.path))
    doc = req.doc if isinstance(req.doc, dict) else {}
    try:
        if req.service == "iotsitewise":
            items = check_entries(doc)
        else:
            items = check_messages(doc, req.service == "iotanalytics")
            need(req.service != "iotanalytics" or (isinstance(doc.get("channelName"), str) and
                 re.match(r"^(?!__)[a-zA-Z0-9_]{1,128}$", doc["channelName"])), "channelName: ^[a-zA-Z0-9_]+$, 1-128")
    except Invalid as e:
        return req.error(400, "InvalidRequestException", "recorder: %s" % e)
    with req.st.lock:
        missing = set(req.state().get("missing", ()))
    if req.service == "iotanalytics" and doc["channelName"] in missing:
        return req.error(404, "ResourceNotFoundException", "A resource with the name %s cannot be found." % doc["channelName"])
    rule = req.partial()
    code = (rule or {}).get("code") or "InternalFailureException"
    host, now = req.headers.get("Host"), time.time()
    failed, accepted = [], []
    for i, it in enumerate(items):
        if rule and (i + 1) % rule["every"] == 0:
            failed.append((it, code, "injected by recorder", None))
        elif req.service == "ioteventsdata" and it["inputName"] in missing:
            failed.append((it, "ResourceNotFoundException", "Input %s does not exist" % it["inputName"], None))
        elif req.service == "iotsitewise" and (it.get("propertyAlias") in missing or it.get("assetId") in missing):
            failed.append((it, "ResourceNotFoundException", "The property does not exist", None))
        elif req.service == "iotsitewise" and any(not now - PAST_S <= v["timestamp"]["timeInSeconds"] <= now + FUTURE_S
                                                  for v in it["propertyValues"]):
            bad = [v["timestamp"] for v in it["propertyValues"]
                   if not now - PAST_S <= v["timestamp"]["timeInSeconds"] <= now + FUTURE_S]
            failed.append((it, "TimestampOutOfRangeException",
                           "The timestamp is outside the range [-7 days, +10 minutes] of the current time", bad))
        else:
            rec = dict(it, host=host)
            if req.service == "iotanalytics":
                rec["channelName"] = doc["channelName"]
            if "payload" in it:
                rec["payload_text"] = decode(it["payload"]).decode("utf-8", "replace")
            accepted.append(rec)
    with req.st.lock:
        req.state().setdefault("accepted", []).extend(accepted)
    if req.service == "iotsitewise":
        return req.json({"errorEntries": [
            {"entryId": it["entryId"], "errors": [{"errorCode": c, "errorMessage": m,
                                                   "timestamps": ts or [v["timestamp"] for v in it["propertyValues"]]}]}
            for it, c, m, ts in failed]}, ctype="application/json")
    key = "batchPutMessageErrorEntries" if req.service == "iotanalytics" else "BatchPutMessageErrorEntries"
    return req.json({key: [{"messageId": it["messageId"], "errorCode": c, "errorMessage": m} for it, c, m, _ in failed]},
                    ctype="application/json")


def control(req):
    what = req.path.rsplit("/", 1)[-1]
    with req.st.lock:
        st = req.state()
        if what == "accepted" and req.method == "GET":
            return req.json(list(st.get("accepted", [])), ctype="application/json")
        if what == "missing":
            names = st.setdefault("missing", set())
            (names.discard if req.method == "DELETE" else names.add)(req.query.get("name", ""))
            return None
    return req.json({"message": "unknown control %s %s" % (req.method, req.path)}, 404, "application/json")


# ---- read-back for the tests -------------------------------------------------
#
#   /usr/bin/python3 svc_iot.py DIR CMD ARGS...
#
# DIR holds acc.json (GET .../accepted), reqs.json (the recorder's requests)
# and errors.txt (mosquitto_sub -v of the errorAction topics); seq_of says
# which test message (its "seq") an entry came from.
# Prints "ok ..." or what is wrong:
#   rejected SVC LO HI TOPIC CODE ACTION RESOURCE
#       the entries of seqs LO..HI: some answered failed with CODE, each sent
#       once (never resent), the others accepted once, one error document on
#       TOPIC per message with a failed entry (failedAction ACTION,
#       failedResource RESOURCE, CODE in errorMessage)
#   throttled SVC LO HI [CODE]
#       every entry of seqs LO..HI accepted once; sent again exactly as often
#       as it was answered failed with CODE (default ThrottlingException),
#       alone or with its whole request
SHAPES = {"iotanalytics": ("messages", "messageId", "batchPutMessageErrorEntries"),
          "ioteventsdata": ("messages", "messageId", "BatchPutMessageErrorEntries"),
          "iotsitewise": ("entries", "entryId", "errorEntries")}


def seq_of(item):
    """The test message an entry came from: its payload's "seq"; for SiteWise
    the number its entryId starts with (the tests template it as ${seq}_...),
    else its first integerValue; None when neither."""
    if "payload" in item:
        return json.loads(base64.b64decode(item["payload"])).get("seq")
    m = re.match(r"^([0-9]+)_", item.get("entryId", ""))
    if m:
        return int(m.group(1))
    return next((v["value"]["integerValue"] for v in item.get("propertyValues", []) if "integerValue" in v["value"]), None)


def sent(reqs, svc, lo, hi):
    """Entries of seqs lo..hi sent, [seq]; failures answered, [(seq, code)];
    entries carried by requests refused as a whole."""
    key, idk, errk = SHAPES[svc]
    s, f, whole = [], [], 0
    for r in reqs:
        if r["service"] != svc or r["body"] is None:
            continue
        items = {it[idk]: seq_of(it) for it in json.loads(r["body"])[key]}
        mine = {i: q for i, q in items.items() if q is not None and lo <= q <= hi}
        s += list(mine.values())
        if r["status"] != 200:
            whole += len(mine)
            continue
        for e in json.loads(r["reply"])[errk]:
            if e[idk] in mine:
                f.append((mine[e[idk]], e.get("errorCode") or e["errors"][0]["errorCode"]))
    return s, f, whole


def read_back(d, svc, lo, hi):
    reqs = json.load(open(d + "/reqs.json"))
    acc = collections.Counter(q for q in map(seq_of, json.load(open(d + "/acc.json"))) if q is not None and lo <= q <= hi)
    return sent(reqs, svc, lo, hi), acc


def check_rejected(d, svc, lo, hi, topic, code, action, resource):
    (s, f, whole), acc = read_back(d, svc, lo, hi)
    per, failed = collections.Counter(s), collections.Counter(q for q, _ in f)
    k = per[lo]
    if not f or {c for _, c in f} != {code} or whole:
        return "answers: %d failed entries with codes %s, %d refused whole" % (len(f), {c for _, c in f}, whole)
    if set(per) != set(range(lo, hi + 1)) or any(n != k for n in per.values()):
        return "entries sent per message: %s (a message's entries must go exactly once)" % sorted(set(per.values()))
    if any(acc[q] != k - failed[q] for q in range(lo, hi + 1)):
        return "accepted entries do not match: %d accepted, %d sent, %d failed" % (sum(acc.values()), len(s), len(f))
    docs = []
    for line in open(d + "/errors.txt"):
        t, _, doc = line.rstrip("\n").partition(" ")
        if t == topic and doc.startswith("{"):
            x = json.loads(doc)
            if lo <= json.loads(base64.b64decode(x["base64OriginalPayload"]))["seq"] <= hi:
                docs.append(x)
    dseq = sorted(json.loads(base64.b64decode(x["base64OriginalPayload"]))["seq"] for x in docs)
    if dseq != sorted(failed):
        return "error documents for seqs %s, failed messages %s" % (dseq, sorted(failed))
    bad = [x["failures"] for x in docs if x["failures"][0]["failedAction"] != action or code not in x["failures"][0]["errorMessage"]
           or (resource != "*" and x["failures"][0]["failedResource"] != resource)]
    if bad:
        return "bad error document %s" % bad[0]
    return "ok %d messages, %d entries sent once each, %d rejected (%s), %d error documents, %d entries accepted" % (
        hi - lo + 1, len(s), len(f), code, len(docs), sum(acc.values()))


def check_throttled(d, svc, lo, hi, code="ThrottlingException"):
    (s, f, whole), acc = read_back(d, svc, lo, hi)
    n = hi - lo + 1
    if set(acc) != set(range(lo, hi + 1)) or len(set(acc.values())) != 1:
        return "accepted: %d messages of %d, entries each %s" % (len(acc), n, sorted(set(acc.values())))
    k = acc[lo]
    if not f or any(c != code for _, c in f) or len(s) != n * k + len(f) + whole:
        return "%d entries sent for %d, %d answered %s, %d in requests refused whole" % (len(s), n * k, len(f), code, whole)
    return "ok %d entries sent for %d: %d answered %s, %d in requests refused whole; each accepted once" % (
        len(s), n * k, len(f), code, whole)


if __name__ == "__main__":
    a = sys.argv
    if a[2] == "rejected":
        print(check_rejected(a[1], a[3], int(a[4]), int(a[5]), a[6], a[7], a[8], a[9]))
    elif a[2] == "throttled":
        print(check_throttled(a[1], a[3], int(a[4]), int(a[5]), *a[6:7]))
    else:
        sys.exit("usage: svc_iot.py DIR rejected|throttled ...")
