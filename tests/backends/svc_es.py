"""svc_es: an OpenSearch / Elasticsearch domain for the recorder (signing
name "es"): the index-document call of the elasticsearch and openSearch
actions, PUT (or POST) /{index}/{type}/{id}, answered as OpenSearch does:
201 {"_index", "_type", "_id", "_version", "result": "created", "_shards",
"_seq_no", "_primary_term"} (200 and "updated" for an id seen before).
Path segments are taken from the raw path and percent-decoded one by one,
so an id may hold '/' (sent as %2F).

Errors in OpenSearch's own shape, {"error": {"root_cause": [...], "type",
"reason", "index"}, "status"}:
  400 invalid_index_name_exception  an index name OpenSearch refuses
                                    (upper case, \\/*?"<>| ,#, a leading _-+)
  400 mapper_parsing_exception      the body is not a JSON object, or a
                                    top-level field does not fit the type
                                    the index mapped it to from the first
                                    document (dynamic mapping: a non-numeric
                                    string into a long/float field, an object
                                    into a scalar one, a scalar into an object)
  400 illegal_argument_exception    a second type for one index (as ES 6/7:
                                    one mapping type per index)
Controls (under /__recorder/svc/es/): GET docs, the documents indexed:
[{"_index", "_type", "_id", "_version", "_source"}] in arrival order (an
update replaces its entry).
"""
import json
import re
from urllib.parse import unquote

SERVICES = ("es",)

BAD_INDEX = re.compile(r'[A-Z\\/*?"<>| ,#]|^[_+-]|^\.\.?$')


def os_error(status, etype, reason, index=None):
    err = {"type": etype, "reason": reason}
    if index is not None:
        err["index"] = index
    body = {"error": dict(err, root_cause=[dict(err)]), "status": status}
    return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(body).encode()


def kind(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "long"
    if isinstance(v, float):
        return "float"
    if isinstance(v, (dict, list)):
        return "object"
    return "text"


def fits(mapped, v):
    if v is None:
        return True
    if mapped in ("long", "float"):
        if isinstance(v, (bool, dict, list)):
            return False
        try:
            float(v)  # numbers, and strings OpenSearch coerces
            return True
        except ValueError:
            return False
    if mapped == "object":
        return isinstance(v, (dict, list))
    return not isinstance(v, (dict, list))


def serve(req):
    segs = [unquote(s) for s in req.raw_path.split("/")[1:]]
    if req.method not in ("PUT", "POST") or len(segs) != 3 or not all(segs):
        return os_error(400, "illegal_argument_exception", "svc_es answers PUT /{index}/{type}/{id} only, not %s %s" % (req.method, req.raw_path))
    index, typ, did = segs
    if BAD_INDEX.search(index):
        return os_error(400, "invalid_index_name_exception", "Invalid index name [%s], must be lowercase and must not contain \\, /, *, ?, \", <, >, |, space, comma, #" % index, index)
    try:
        doc = json.loads(req.body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return os_error(400, "mapper_parsing_exception", "failed to parse: the document is not a JSON object", index)
    with req.st.lock:
        s = req.state()
        idx = s.setdefault("indexes", {}).setdefault(index, {"type": typ, "fields": {}, "seq": 0})
        if idx["type"] != typ:
            return os_error(400, "illegal_argument_exception", "Rejecting mapping update to [%s] as the final mapping would have more than 1 type: [%s, %s]" % (index, idx["type"], typ), index)
        for k, v in doc.items():
            mapped = idx["fields"].get(k)
            if mapped and not fits(mapped, v):
                return os_error(400, "mapper_parsing_exception", "failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'" % (k, mapped, did, v), index)
        for k, v in doc.items():
            if v is not None:
                idx["fields"].setdefault(k, kind(v))
        docs = s.setdefault("docs", {})
        old = docs.get((index, did))
        version = old["_version"] + 1 if old else 1
        idx["seq"] += 1
        docs[(index, did)] = {"_index": index, "_type": typ, "_id": did, "_version": version, "_source": doc}
    body = {"_index": index, "_type": typ, "_id": did, "_version": version, "result": "updated" if old else "created",
            "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": idx["seq"] - 1, "_primary_term": 1}
    return 200 if old else 201, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(body).encode()


def control(req):
    if req.path.endswith("/docs"):
        with req.st.lock:
            docs = list(req.state().get("docs", {}).values())
        return req.json(docs, ctype="application/json")
    return req.json({"message": "unknown svc_es control"}, 404, "application/json")
