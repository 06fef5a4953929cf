"""Amazon Location Service trackers for the recorder:
BatchUpdateDevicePosition (REST-JSON, POST
/tracking/v0/trackers/{TrackerName}/positions, signing name "geo";
target-apis.json "location").

Every tracker exists but those marked missing (`missing`), which answer
404 ResourceNotFoundException.
The body must be {"Updates": [1..10 updates]} and nothing else, each
update {DeviceId ([-._\\p{L}\\p{N}]{1,100}), Position [longitude -180..180,
latitude -90..90], SampleTime (ISO 8601)}, else 400 ValidationException
for the whole request, as the service's input validation does.  A partial
rule fails every N-th update of a request: it is left out and reported in
Errors[] by DeviceId and SampleTime (written back as the service does,
"2026-12-01T20:00:00.123000+00:00", not as sent) with Error {Code (the
rule's code, default ValidationError), Message}.  Written updates are kept,
duplicates included (a resend shows), for `positions`.

Controls (/__recorder/svc/geo/...):
  POST missing?name=T     the tracker does not exist
  GET  positions          [{"TrackerName", "DeviceId", "Position", "SampleTime"}]
"""
import datetime
import re

SERVICES = ("geo",)
PATH = re.compile(r"^/tracking/v0/trackers/([^/]+)/positions$")


def _st(req):
    s = req.state()
    s.setdefault("missing", [])
    s.setdefault("positions", [])
    return s


def _error(req, status, code, message):
    st, h, b = req.json({"message": message}, status, "application/json")
    h["x-amzn-ErrorType"] = code
    return st, h, b


def _time(s):
    """The datetime of an ISO 8601 SampleTime, or None."""
    if not isinstance(s, str):
        return None
    try:
        return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def _bad(u):
    if not isinstance(u, dict) or set(u) - {"DeviceId", "Position", "SampleTime", "Accuracy", "PositionProperties"}:
        return "an update has unknown members"
    d, p = u.get("DeviceId"), u.get("Position")
    if not isinstance(d, str) or not re.fullmatch(r"[-._\w]{1,100}", d):
        return "DeviceId %r is not valid" % (d,)
    if not isinstance(p, list) or len(p) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p):
        return "Position must be [longitude, latitude]"
    if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90):
        return "Position %r is out of range" % (p,)
    if _time(u.get("SampleTime")) is None:
        return "SampleTime %r is not ISO 8601" % (u.get("SampleTime"),)
    return None


def serve(req):
    m = PATH.match(req.path)
    if req.method != "POST" or not m:
        return _error(req, 404, "ResourceNotFoundException", "no such operation %s %s" % (req.method, req.path))
    tracker, doc = m.group(1), req.doc
    ups = doc.get("Updates") if isinstance(doc, dict) else None
    if not isinstance(ups, list) or not 1 <= len(ups) <= 10 or set(doc) != {"Updates"}:
        return _error(req, 400, "ValidationException", "the body must be {\"Updates\": [1..10 updates]} alone")
    for u in ups:
        why = _bad(u)
        if why:
            return _error(req, 400, "ValidationException", why)
    rule = req.partial()
    errors = []
    with req.st.lock:
        s = _st(req)
        if tracker in s["missing"]:
            return _error(req, 404, "ResourceNotFoundException", "Tracker %s not found" % tracker)
        for i, u in enumerate(ups):
            if rule and (i + 1) % rule["every"] == 0:
                t = _time(u["SampleTime"]).astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")
                errors.append({"DeviceId": u["DeviceId"], "SampleTime": t,
                               "Error": {"Code": rule.get("code") or "ValidationError", "Message": "injected by recorder"}})
            else:
                s["positions"].append(dict(u, TrackerName=tracker))
    return req.json({"Errors": errors}, 200, "application/json")


def control(req):
    what = req.path.rsplit("/", 1)[-1]
    with req.st.lock:
        s = _st(req)
        if what == "missing":
            s["missing"].append(req.query.get("name", ""))
        elif what == "positions":
            return req.json(s["positions"], 200, "application/json")
        else:
            return req.json({"message": "unknown control %s" % what}, 404, "application/json")
    return None
