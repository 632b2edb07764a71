#!/usr/bin/python3
"""Requests a meshwire node must refuse with a definite status, never a hang.

Usage: limits_client.py <stubs_dir> <node_address> metadata|malformed
stubs_dir holds messaging/v1/messaging_pb2.py (protoc --python_out). Every call has a
deadline, so a hang shows up as DEADLINE_EXCEEDED instead of blocking the test. Prints
one JSON object: status code names (and details) per case.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from messaging.v1 import messaging_pb2 as pb  # noqa: E402

address = sys.argv[2]
mode = sys.argv[3]
DEADLINE_S = 8


def fresh_channel():
    ch = grpc.insecure_channel(address)
    grpc.channel_ready_future(ch).result(timeout=10)
    return ch


def send(ch, metadata=()):
    call = ch.unary_unary(
        "/messaging.v1.Messenger/Send",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.SendResponse.FromString,
    )
    req = pb.SendRequest(message=pb.Message(topic="py.limits", payload=b"x"))
    return call(req, metadata=list(metadata), timeout=DEADLINE_S)


def subscribe(ch, metadata=()):
    call = ch.unary_stream(
        "/messaging.v1.Messenger/Subscribe",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.DeliveryBatch.FromString,
    )
    stream = call(pb.SubscribeRequest(topics=["py.limits"]), metadata=list(metadata), timeout=DEADLINE_S)
    next(iter(stream))


def outcome(fn):
    try:
        fn()
        return {"code": "OK", "details": ""}
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details() or ""}


def metadata_of(size, shape):
    if shape == "one":  # a single header value of `size` bytes
        return [("x-big", "a" * size)]
    return [(f"x-h{i}", "a" * 1000) for i in range(size // 1000)]  # many 1 KB headers


ident = lambda b: b  # noqa: E731
result = {}
if mode == "metadata":
    for size in (100_000, 1_000_000):
        for shape in ("one", "many"):
            for rpc, fn in (("Send", send), ("Subscribe", subscribe)):
                ch = fresh_channel()
                md = metadata_of(size, shape)
                result[f"{rpc}/{shape}/{size}"] = outcome(lambda: fn(ch, md))
                ch.close()
else:
    # Request bodies that are not protobuf, sent raw (identity serializer).
    ch = fresh_channel()
    for body_name, body in (("ff", b"\xff\xff\xff"), ("truncated", b"\x0a\x05ab")):
        result[f"Send/{body_name}"] = outcome(
            lambda: ch.unary_unary("/messaging.v1.Messenger/Send", request_serializer=ident,
                                   response_deserializer=ident)(body, timeout=DEADLINE_S))
        result[f"Subscribe/{body_name}"] = outcome(
            lambda: list(ch.unary_stream("/messaging.v1.Messenger/Subscribe", request_serializer=ident,
                                         response_deserializer=ident)(body, timeout=DEADLINE_S)))
        result[f"SendStream/{body_name}"] = outcome(
            lambda: list(ch.stream_stream("/messaging.v1.Messenger/SendStream", request_serializer=ident,
                                          response_deserializer=ident)(iter([body]), timeout=DEADLINE_S)))
        result[f"ListPeers/{body_name}"] = outcome(
            lambda: ch.unary_unary("/messaging.v1.Peers/ListPeers", request_serializer=ident,
                                   response_deserializer=ident)(body, timeout=DEADLINE_S))
        # DeletePeerRequest.id is field 1: a truncated id must not shrink to "ab"
        result[f"DeletePeer/{body_name}"] = outcome(
            lambda: ch.unary_unary("/messaging.v1.Peers/DeletePeer", request_serializer=ident,
                                   response_deserializer=ident)(body, timeout=DEADLINE_S))
    ch.close()

# The node keeps serving: a normal call on a fresh channel.
ch = fresh_channel()
result["after_send_id"] = send(ch).id
ch.close()
print(json.dumps(result))
