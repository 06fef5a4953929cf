"""Amazon Timestream (write) for the recorder: DescribeEndpoints and
WriteRecords, JSON 1.0 (target-apis.json "timestream-write").

Endpoint discovery as the service does it: DescribeEndpoints, sent to
ingest.timestream.REGION.amazonaws.com, answers the address data calls go
to ("ingest-cell1.timestream.REGION.amazonaws.com" at first) and
CachePeriodInMinutes (1440).  `rotate` retires the current address: a
WriteRecords sent to a retired host is answered 421
InvalidEndpointException, and DescribeEndpoints names the next cell.

WriteRecords: every table exists but those marked missing (`missing`),
which answer 404 ResourceNotFoundException; a malformed request is 400 ValidationException;
a record that is not valid (type, value, time, reserved dimension name) or
that a partial rule picks (every N-th of the request) is rejected: 400
RejectedRecordsException with RejectedRecords [{RecordIndex, Reason}],
and the other records are written, as Timestream does.  Written records
are kept, duplicates included (a resend shows), for `records`.

Controls (/__recorder/svc/timestream/...):
  POST missing?db=D&table=T      the table does not exist
  POST rotate[?address=HOST]     retire the current address
  POST endpoint?period=MIN       set CachePeriodInMinutes
  GET  records                   [{"db","table", ...the record as sent}]
  GET  state                     {"address","retired","describes","period"}
"""
import json
import re

SERVICES = ("timestream",)
TYPES = ("DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN", "TIMESTAMP", "MULTI")
UNITS = ("MILLISECONDS", "SECONDS", "MICROSECONDS", "NANOSECONDS")


def _st(req):
    s = req.state()
    s.setdefault("cell", 1)
    s.setdefault("region", "us-east-1")
    s.setdefault("retired", [])
    s.setdefault("missing", [])
    s.setdefault("records", [])
    s.setdefault("describes", 0)
    s.setdefault("period", 1440)
    s.setdefault("address", None)
    return s


def _address(s):
    return s["address"] or "ingest-cell%d.timestream.%s.amazonaws.com" % (s["cell"], s["region"])


def _reply(req, obj, status=200, code=None):
    st, h, b = req.json(obj, status, "application/x-amz-json-1.0")
    if code:
        h["x-amzn-ErrorType"] = code
    return st, h, b


def _error(req, status, code, message):
    return _reply(req, {"__type": "com.amazonaws.timestream.v20181101#" + code, "Message": message}, status, code)


def _bad_record(r):
    """Why Timestream would reject the record, or None."""
    if not isinstance(r, dict):
        return "not a record"
    dims = r.get("Dimensions") or []
    if not isinstance(dims, list) or len(dims) > 128:
        return "Dimensions must be a list of at most 128"
    for d in dims:
        n = d.get("Name") if isinstance(d, dict) else None
        if not isinstance(n, str) or not n or not isinstance(d.get("Value"), str):
            return "a dimension without Name or Value"
        if n in ("measure_name", "measure_value", "time") or n.startswith(("ts_", "measure_value")) or ":" in n:
            return "dimension name %s is reserved" % n
        if d.get("DimensionValueType", "VARCHAR") != "VARCHAR":
            return "DimensionValueType must be VARCHAR"
    name, value, typ = r.get("MeasureName"), r.get("MeasureValue"), r.get("MeasureValueType", "DOUBLE")
    if not isinstance(name, str) or not name or not isinstance(value, str) or not 1 <= len(value) <= 2048:
        return "MeasureName and MeasureValue (1..2048) are required"
    if typ not in TYPES:
        return "MeasureValueType %s is not valid" % typ
    if typ == "BIGINT" and not (re.fullmatch(r"-?[0-9]+", value) and -2**63 <= int(value) < 2**63):
        return "Measure value %s is not a BIGINT" % value
    if typ == "DOUBLE":
        try:
            if float(value) in (float("inf"), float("-inf")) or value.strip().lower() in ("nan", "inf", "infinity"):
                raise ValueError
        except ValueError:
            return "Measure value %s is not a DOUBLE" % value
    if typ == "BOOLEAN" and value.lower() not in ("true", "false"):
        return "Measure value %s is not a BOOLEAN" % value
    if not re.fullmatch(r"[0-9]+", str(r.get("Time", ""))):
        return "Time must be an epoch number"
    if r.get("TimeUnit", "MILLISECONDS") not in UNITS:
        return "TimeUnit is not valid"
    return None


def serve(req):
    host = req.headers.get("Host", "").split(":")[0]
    with req.st.lock:
        s = _st(req)
        m = re.fullmatch(r"ingest\.timestream\.([a-z0-9-]+)\.amazonaws\.com", host)
        if m:
            s["region"] = m.group(1)
        if req.op == "DescribeEndpoints":
            s["describes"] += 1
            return _reply(req, {"Endpoints": [{"Address": _address(s), "CachePeriodInMinutes": s["period"]}]})
        if req.op != "WriteRecords":
            return _error(req, 400, "UnknownOperationException", "unknown operation %s" % req.op)
        if host in s["retired"]:
            return _error(req, 421, "InvalidEndpointException", "The endpoint %s is no longer valid" % host)
    doc = req.doc
    db, table, records = doc.get("DatabaseName"), doc.get("TableName"), doc.get("Records")
    if not isinstance(db, str) or not isinstance(table, str) or not isinstance(records, list) or not 1 <= len(records) <= 100:
        return _error(req, 400, "ValidationException", "DatabaseName, TableName and 1..100 Records are required")
    rule = req.partial()
    with req.st.lock:
        s = _st(req)
        if "%s/%s" % (db, table) in s["missing"]:
            return _error(req, 404, "ResourceNotFoundException", "The table %s/%s does not exist." % (db, table))
        rejected = []
        for i, r in enumerate(records):
            why = _bad_record(r)
            if why is None and rule and (i + 1) % rule["every"] == 0:
                why = "injected by recorder"
            if why:
                rejected.append({"RecordIndex": i, "Reason": why})
            else:
                s["records"].append(dict(r, db=db, table=table))
    if rejected:
        return _reply(req, {"__type": "com.amazonaws.timestream.v20181101#RejectedRecordsException",
                            "Message": "One or more records have been rejected. See RejectedRecords for details.",
                            "RejectedRecords": rejected}, 400, "RejectedRecordsException")
    n = len(records)
    return _reply(req, {"RecordsIngested": {"Total": n, "MemoryStore": n, "MagneticStore": 0}})


def control(req):
    what = req.path.rsplit("/", 1)[-1]
    q = req.query
    with req.st.lock:
        s = _st(req)
        if what == "missing":
            s["missing"].append("%s/%s" % (q.get("db", ""), q.get("table", "")))
        elif what == "rotate":
            s["retired"].append(_address(s))
            s["cell"] += 1
            s["address"] = q.get("address")
        elif what == "endpoint":
            s["period"] = int(q.get("period", s["period"]))
        elif what == "records":
            return req.json(s["records"], 200, "application/json")
        elif what == "state":
            return req.json({"address": _address(s), "retired": s["retired"], "describes": s["describes"],
                             "period": s["period"]}, 200, "application/json")
        else:
            return req.json({"message": "unknown control %s" % what}, 404, "application/json")
    return None
