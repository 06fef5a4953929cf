"""AWS IoT for the recorder: the data plane's GetThingShadow (signing name
iotdata, what get_thing_shadow() calls) and the registry's DescribeThing and
ListThingGroupsForThing (signing name iot, what get_registry_data() calls).

The test sets shadows and things through the control endpoints:
  POST   /__recorder/svc/iotdata/shadow?thing=T[&name=S]  body {"state": {"reported": {...}, "desired": {...}}}
  DELETE /__recorder/svc/iotdata/shadow?thing=T[&name=S]
  POST   /__recorder/svc/iot/thing?name=T  body {"attributes": {...}, "thingTypeName": "...", "groups": ["g", ...]}
  DELETE /__recorder/svc/iot/thing?name=T
A shadow is answered as GetThingShadow does: state, metadata (a timestamp
per leaf), version (counts the POSTs) and timestamp. A missing shadow or
thing is 404 ResourceNotFoundException.
"""
import re
import time
import uuid

SERVICES = ("iotdata", "iot")
ACCOUNT = "123456789012"


def stamps(v, t):
    """The metadata of a state section: the same shape, {"timestamp": t} at each leaf."""
    if isinstance(v, dict):
        return {k: stamps(x, t) for k, x in v.items()}
    if isinstance(v, list):
        return [stamps(x, t) for x in v]
    return {"timestamp": t}


def serve(req):
    if req.method != "GET":
        return req.error(400, "InvalidRequestException", "recorder: only GET is answered")
    if req.service == "iotdata":
        m = re.match(r"^/things/([^/]+)/shadow$", req.path)
        if not m:
            return req.error(404, "ResourceNotFoundException", "recorder: no such API %s" % req.path)
        key = "%s|%s" % (m.group(1), req.query.get("name", ""))
        with req.st.lock:
            doc = req.state().setdefault("shadows", {}).get(key)
        if doc is None:
            shown = m.group(1) + ("~" + req.query["name"] if "name" in req.query else "")
            return req.error(404, "ResourceNotFoundException", "No shadow exists with name: '%s'" % shown)
        return req.json(doc, ctype="application/json")
    m = re.match(r"^/things/([^/]+)(/thing-groups)?$", req.path)
    if not m:
        return req.error(404, "ResourceNotFoundException", "recorder: no such API %s" % req.path)
    with req.st.lock:
        thing = req.state().setdefault("things", {}).get(m.group(1))
    if thing is None:
        return req.error(404, "ResourceNotFoundException", "Thing %s cannot be found." % m.group(1))
    if m.group(2) is None:
        return req.json({k: v for k, v in thing.items() if k != "groups"}, ctype="application/json")
    size = int(req.query.get("maxResults", "25"))
    start = int(req.query.get("nextToken", "0"))
    groups = thing["groups"][start:start + size]
    out = {"thingGroups": [{"groupName": g, "groupArn": "arn:aws:iot:us-east-1:%s:thinggroup/%s" % (ACCOUNT, g)}
                           for g in groups]}
    if start + size < len(thing["groups"]):
        out["nextToken"] = str(start + size)
    return req.json(out, ctype="application/json")


def control(req):
    now = int(time.time())
    with req.st.lock:
        st = req.state()
        if req.service == "iotdata" and req.path.endswith("/shadow") and req.query.get("thing"):
            key = "%s|%s" % (req.query["thing"], req.query.get("name", ""))
            shadows = st.setdefault("shadows", {})
            if req.method == "DELETE":
                shadows.pop(key, None)
                return None
            state = req.doc.get("state", {})
            version = shadows.get(key, {}).get("version", 0) + 1
            shadows[key] = {"state": state, "metadata": {k: stamps(v, now) for k, v in state.items()},
                            "version": version, "timestamp": now}
            return None
        if req.service == "iot" and req.path.endswith("/thing") and req.query.get("name"):
            name = req.query["name"]
            things = st.setdefault("things", {})
            if req.method == "DELETE":
                things.pop(name, None)
                return None
            old = things.get(name)
            t = {"defaultClientId": name, "thingName": name,
                 "thingId": old["thingId"] if old else str(uuid.uuid4()),
                 "thingArn": "arn:aws:iot:us-east-1:%s:thing/%s" % (ACCOUNT, name),
                 "attributes": req.doc.get("attributes", {}), "version": old["version"] + 1 if old else 1,
                 "groups": list(req.doc.get("groups", []))}
            if "thingTypeName" in req.doc:
                t["thingTypeName"] = req.doc["thingTypeName"]
            things[name] = t
            return None
    return req.json({"message": "use /__recorder/svc/iotdata/shadow?thing=T[&name=S] or "
                     "/__recorder/svc/iot/thing?name=T"}, 404, "application/json")
