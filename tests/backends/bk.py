#!/usr/bin/python3
"""bk.py: set-up and read-back of the emulators for the sink tests.

Talks to the emulators directly (BK_DYNAMODB_RAW, BK_KINESIS_RAW, BK_S3_RAW,
BK_SQS_RAW, as exported by tests/backends/lib.sh), signed with botocore's
SigV4 (the emulators do not check signatures; s3rver wants access key
S3RVER).  Output is JSON on stdout, except s3-get (the raw object).

  ddb-create TABLE HASH[:S|N|B] [RANGE[:S|N|B]]   create a table, wait ACTIVE
  ddb-scan TABLE                                 all items (DynamoDB JSON), a list
  kinesis-create STREAM [SHARDS]                 create a stream, wait ACTIVE
  kinesis-read STREAM                            all records of all shards, a list of
                                                 {shard, sequence, partition_key, data, data_b64}
  s3-create-bucket BUCKET                        (s3rver)
  s3-list BUCKET                                 keys, a list
  s3-get BUCKET KEY                              the object's bytes
  sqs-create QUEUE [ATTR=VALUE...]               prints the queue URL (FifoQueue=true for .fifo)
  sqs-receive QUEUE [--keep]                     all messages, a list of {body, attributes,
                                                 message_attributes, id}; deletes them unless --keep
  sns-create-topic TOPIC QUEUE                   topic + queue + raw-delivery subscription;
                                                 prints {"topic_arn","queue_url"}
"""
import base64, json, os, sys, time, urllib.error, urllib.request
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode, urlsplit

from botocore.auth import SigV4Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import hashlib

REGION = os.environ.get("BK_REGION", "us-east-1")


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit("bk.py: %s is not set (source tests/backends/lib.sh and run backends_start)" % name)
    return v.rstrip("/")


def call(service, base, method="POST", path="/", body=b"", headers=None, ok=(200,)):
    headers = dict(headers or {})
    headers["Host"] = urlsplit(base).netloc
    s3 = service == "s3"
    if s3:
        headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
        cred = Credentials("S3RVER", "S3RVER")
    else:
        cred = Credentials(os.environ.get("BK_AK", "AKIDEXAMPLE"), os.environ.get("BK_SK", "x"))
    req = AWSRequest(method=method, url=base + path, data=body, headers=headers)
    (S3SigV4Auth if s3 else SigV4Auth)(cred, service, REGION).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(base + path, data=body if method in ("POST", "PUT") else None,
                               headers=dict(p.headers), method=method)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        data = e.read()
        if e.code in ok:
            return e.code, data
        sys.exit("bk.py: %s %s%s -> %d %s" % (method, base, path, e.code, data[:500].decode("utf-8", "replace")))


def jcall(service, base, target, doc, version="1.0"):
    _, data = call(service, base, body=json.dumps(doc).encode(),
                   headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-" + version})
    return json.loads(data) if data.strip() else {}


def ddb(op, doc):
    return jcall("dynamodb", env("BK_DYNAMODB_RAW"), "DynamoDB_20120810." + op, doc)


def kin(op, doc):
    return jcall("kinesis", env("BK_KINESIS_RAW"), "Kinesis_20131202." + op, doc, "1.1")


def sqs(op, doc):
    return jcall("sqs", env("BK_SQS_RAW"), "AmazonSQS." + op, doc)


def sns(params):
    _, data = call("sns", env("BK_SQS_RAW"), body=urlencode(dict(params, Version="2010-03-31")).encode(),
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    return ET.fromstring(data)


def queue_url(name):
    return sqs("GetQueueUrl", {"QueueName": name})["QueueUrl"]


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, a = argv[0], argv[1:]
    out = None
    if cmd == "ddb-create":
        keys = [k.split(":") + ["S"] for k in a[1:3]]
        ddb("CreateTable", {"TableName": a[0], "BillingMode": "PAY_PER_REQUEST",
                            "AttributeDefinitions": [{"AttributeName": k[0], "AttributeType": k[1]} for k in keys],
                            "KeySchema": [{"AttributeName": k[0], "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"))]})
        for _ in range(200):
            if ddb("DescribeTable", {"TableName": a[0]})["Table"]["TableStatus"] == "ACTIVE":
                return 0
            time.sleep(0.05)
        sys.exit("bk.py: table %s never became ACTIVE" % a[0])
    elif cmd == "ddb-scan":
        out, start = [], None
        while True:
            doc = {"TableName": a[0], "ConsistentRead": True}
            if start:
                doc["ExclusiveStartKey"] = start
            r = ddb("Scan", doc)
            out += r.get("Items", [])
            start = r.get("LastEvaluatedKey")
            if not start:
                break
    elif cmd == "kinesis-create":
        kin("CreateStream", {"StreamName": a[0], "ShardCount": int(a[1]) if len(a) > 1 else 1})
        for _ in range(200):
            if kin("DescribeStream", {"StreamName": a[0]})["StreamDescription"]["StreamStatus"] == "ACTIVE":
                return 0
            time.sleep(0.05)
        sys.exit("bk.py: stream %s never became ACTIVE" % a[0])
    elif cmd == "kinesis-read":
        out = []
        for shard in kin("DescribeStream", {"StreamName": a[0]})["StreamDescription"]["Shards"]:
            it = kin("GetShardIterator", {"StreamName": a[0], "ShardId": shard["ShardId"],
                                          "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
            while it:
                r = kin("GetRecords", {"ShardIterator": it, "Limit": 10000})
                for rec in r.get("Records", []):
                    raw = base64.b64decode(rec["Data"])
                    out.append({"shard": shard["ShardId"], "sequence": rec["SequenceNumber"],
                                "partition_key": rec["PartitionKey"], "data": raw.decode("utf-8", "replace"),
                                "data_b64": rec["Data"]})
                if not r.get("Records"):
                    break
                it = r.get("NextShardIterator")
    elif cmd == "s3-create-bucket":
        call("s3", env("BK_S3_RAW"), "PUT", "/" + a[0])
        return 0
    elif cmd == "s3-list":
        out, token = [], None
        while True:
            q = "list-type=2" + ("&continuation-token=" + quote(token, safe="") if token else "")
            _, data = call("s3", env("BK_S3_RAW"), "GET", "/%s?%s" % (a[0], q))
            root = ET.fromstring(data)
            ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
            out += [c.findtext(ns + "Key") for c in root.findall(ns + "Contents")]
            token = root.findtext(ns + "NextContinuationToken")
            if root.findtext(ns + "IsTruncated") != "true" or not token:
                break
    elif cmd == "s3-get":
        _, data = call("s3", env("BK_S3_RAW"), "GET", "/%s/%s" % (a[0], quote(a[1], safe="/~")))
        sys.stdout.buffer.write(data)
        return 0
    elif cmd == "sqs-create":
        attrs = dict(x.split("=", 1) for x in a[1:])
        if a[0].endswith(".fifo"):
            attrs.setdefault("FifoQueue", "true")
        out = sqs("CreateQueue", {"QueueName": a[0], "Attributes": attrs})["QueueUrl"]
        print(out)
        return 0
    elif cmd == "sqs-receive":
        url, out = queue_url(a[0]), []
        while True:
            msgs = sqs("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0,
                                          "AttributeNames": ["All"], "MessageAttributeNames": ["All"],
                                          "VisibilityTimeout": 30}).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                out.append({"id": m["MessageId"], "body": m["Body"], "attributes": m.get("Attributes", {}),
                            "message_attributes": m.get("MessageAttributes", {})})
                if "--keep" not in a:
                    sqs("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]})
    elif cmd == "sns-create-topic":
        root = sns({"Action": "CreateTopic", "Name": a[0]})
        arn = next(e.text for e in root.iter() if e.tag.endswith("TopicArn"))
        url = sqs("CreateQueue", {"QueueName": a[1]})["QueueUrl"]
        qarn = sqs("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]})["Attributes"]["QueueArn"]
        sns({"Action": "Subscribe", "TopicArn": arn, "Protocol": "sqs", "Endpoint": qarn,
             "Attributes.entry.1.key": "RawMessageDelivery", "Attributes.entry.1.value": "true"})
        out = {"topic_arn": arn, "queue_url": url}
    else:
        sys.exit("bk.py: unknown command %s (see --help)" % cmd)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
