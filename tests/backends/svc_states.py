"""svc_states: Step Functions for the recorder (signing name "states").

StartExecution (JSON 1.0, target AWSStepFunctions.StartExecution) answered
as target-apis.json says: {"executionArn", "startDate"}, or one of its
errors (400, __type):
  InvalidArn                 stateMachineArn not arn:P:states:R:A:stateMachine:NAME
  StateMachineDoesNotExist   NAME marked missing (control below)
  InvalidName                name longer than 80 or with a character Step
                             Functions refuses (white space, <>{}[]?*"#%\\^|~`$&,;:/)
  InvalidExecutionInput      input not JSON, or over 256 KiB
  ExecutionAlreadyExists     the name was used before with another input
                             (the same name and input: the same answer, as AWS)
Every execution started is kept; controls (under /__recorder/svc/states/):
  GET  executions            [{"executionArn", "stateMachineArn", "name", "input", "named"}]
  POST missing?name=NAME     NAME answers StateMachineDoesNotExist (DELETE: no longer)
"""
import json
import re
import time
import uuid

SERVICES = ("states",)

ARN = re.compile(r"^arn:(aws[a-z-]*):states:([a-z0-9-]+):(\d{12}):stateMachine:([A-Za-z0-9_-]{1,80})$")
BAD_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


def _state(req):
    s = req.state()
    s.setdefault("executions", [])
    s.setdefault("by_name", {})
    s.setdefault("missing", set())
    return s


def serve(req):
    if req.op != "StartExecution":
        return req.error(400, "UnknownOperationException", "svc_states answers StartExecution only")
    doc = req.doc
    arn, name, inp = doc.get("stateMachineArn", ""), doc.get("name"), doc.get("input", "{}")
    m = ARN.match(arn if isinstance(arn, str) else "")
    if not m:
        return req.error(400, "InvalidArn", "Invalid Arn: '%s'" % arn)
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 80 or BAD_NAME.search(name)):
        return req.error(400, "InvalidName", "Invalid Name: '%s'" % name)
    if not isinstance(inp, str) or len(inp.encode()) > 262144:
        return req.error(400, "InvalidExecutionInput", "Invalid State Machine Execution Input: too large or not a string")
    try:
        json.loads(inp)
    except ValueError:
        return req.error(400, "InvalidExecutionInput", "Invalid State Machine Execution Input: 'not JSON'")
    part, region, account, sm = m.groups()
    with req.st.lock:
        s = _state(req)
        if sm in s["missing"]:
            return req.error(400, "StateMachineDoesNotExist", "State Machine Does Not Exist: '%s'" % arn)
        named = name is not None
        name = name if named else str(uuid.uuid4())
        key = (arn, name)
        if key in s["by_name"]:
            old = s["by_name"][key]
            if old["input"] != inp:
                return req.error(400, "ExecutionAlreadyExists", "Execution Already Exists: '%s'" % old["executionArn"])
            return req.json({"executionArn": old["executionArn"], "startDate": old["startDate"]}, ctype="application/x-amz-json-1.0")
        e = {"executionArn": "arn:%s:states:%s:%s:execution:%s:%s" % (part, region, account, sm, name),
             "stateMachineArn": arn, "name": name, "input": inp, "named": named, "startDate": round(time.time(), 3)}
        s["by_name"][key] = e
        s["executions"].append(e)
    return req.json({"executionArn": e["executionArn"], "startDate": e["startDate"]}, ctype="application/x-amz-json-1.0")


def control(req):
    with req.st.lock:
        s = _state(req)
        if req.path.endswith("/executions"):
            return req.json(list(s["executions"]), ctype="application/json")
        if req.path.endswith("/missing"):
            (s["missing"].discard if req.method == "DELETE" else s["missing"].add)(req.query.get("name", ""))
            return None
    return req.json({"message": "unknown svc_states control"}, 404, "application/json")
