"""Secrets Manager for the recorder: GetSecretValue (what get_secret() calls).

Secrets are set by the test through the control endpoint:
  POST   /__recorder/svc/secretsmanager/secret?name=N  body {"SecretString": "..."}
                                                        or {"SecretBinary": "<base64>"}
  DELETE /__recorder/svc/secretsmanager/secret?name=N
Each POST makes a new version (a new VersionId). GetSecretValue finds a
secret by name or by ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX,
the 6-character suffix optional); an unknown one is 400
ResourceNotFoundException, as Secrets Manager answers.
"""
import time
import uuid

SERVICES = ("secretsmanager",)
ACCOUNT = "123456789012"


def name_of(secret_id):
    if not secret_id.startswith("arn:"):
        return secret_id, None
    parts = secret_id.split(":", 6)
    if len(parts) < 7 or parts[5] != "secret":
        return None, None
    name = parts[6]
    # The ARN ends in "-" and 6 random characters Secrets Manager added.
    return name, (name[:-7] if len(name) > 7 and name[-7] == "-" else None)


def serve(req):
    if req.op != "GetSecretValue":
        return req.error(400, "InvalidRequestException", "recorder: only GetSecretValue is answered")
    sid = req.doc.get("SecretId")
    if not isinstance(sid, str) or not sid:
        return req.error(400, "InvalidParameterException", "SecretId is required")
    name, short = name_of(sid)
    with req.st.lock:
        secrets = req.state().setdefault("secrets", {})
        s = secrets.get(name) or secrets.get(short)
        s = dict(s) if s else None
    if s is None:
        return req.error(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    out = {"ARN": s["arn"], "Name": s["name"], "VersionId": s["version"], "VersionStages": ["AWSCURRENT"],
           "CreatedDate": s["created"]}
    for f in ("SecretString", "SecretBinary"):
        if f in s:
            out[f] = s[f]
    return req.json(out)


def control(req):
    name = req.query.get("name", "")
    if not req.path.endswith("/secret") or not name:
        return req.json({"message": "use /__recorder/svc/secretsmanager/secret?name=N"}, 404, "application/json")
    with req.st.lock:
        secrets = req.state().setdefault("secrets", {})
        if req.method == "DELETE":
            secrets.pop(name, None)
            return None
        s = {"name": name, "arn": "arn:aws:secretsmanager:us-east-1:%s:secret:%s-AbCdEf" % (ACCOUNT, name),
             "version": str(uuid.uuid4()), "created": time.time()}
        s.update({k: v for k, v in req.doc.items() if k in ("SecretString", "SecretBinary")})
        secrets[name] = s
    return None
