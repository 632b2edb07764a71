#!/usr/bin/python3
"""Idempotent Send from a non-JavaScript client (Send.idempotency_key).

Usage: idempotency_client.py <stubs_dir> <address_a> <address_b> <key_prefix>
stubs_dir holds messaging/v1/messaging_pb2.py (protoc --python_out). Publishes five keys
through node A with ack DELIVERED, retries each through node B, then sends a key of 257
bytes. Every call has a deadline. Prints one JSON object.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from messaging.v1 import messaging_pb2 as pb  # noqa: E402

address_a, address_b, prefix = sys.argv[2], sys.argv[3], sys.argv[4]
DEADLINE_S = 20


def channel(address):
    ch = grpc.insecure_channel(address)
    grpc.channel_ready_future(ch).result(timeout=10)
    return ch


def send_on(ch, key, payload):
    call = ch.unary_unary(
        "/messaging.v1.Messenger/Send",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.SendResponse.FromString,
    )
    req = pb.SendRequest(
        message=pb.Message(topic="py.idem", payload=payload),
        ack=pb.DELIVERED,
        idempotency_key=key,
    )
    r = call(req, timeout=DEADLINE_S)
    return {"id": r.id, "delivered": r.delivered, "duplicate": r.duplicate}


a, b = channel(address_a), channel(address_b)
out = {"pairs": []}
for i in range(5):
    key = f"{prefix}-{i}"
    first = send_on(a, key, key.encode())
    retry = send_on(b, key, key.encode())
    out["pairs"].append({"key": key, "first": first, "retry": retry})
try:
    send_on(a, "k" * 257, b"x")
    out["too_long"] = {"code": "OK", "details": ""}
except grpc.RpcError as e:
    out["too_long"] = {"code": e.code().name, "details": e.details() or ""}
print(json.dumps(out))
