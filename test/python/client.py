#!/usr/bin/python3
"""A non-JavaScript gRPC client for meshwire: proof that any language works from proto/.

Usage: client.py <stubs_dir> <node_address>
Stubs are made by protoc (Debian's protobuf-compiler) into stubs_dir; calls use grpcio's
generic multi-callables, so no grpc code generator is needed. Prints one JSON object.
"""
import json
import sys
import threading

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from messaging.v1 import messaging_pb2 as pb  # noqa: E402

address = sys.argv[2]
channel = grpc.insecure_channel(address)
grpc.channel_ready_future(channel).result(timeout=10)


def unary(name, req, resp_cls, timeout=10):
    call = channel.unary_unary(
        f"/messaging.v1.Messenger/{name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=resp_cls.FromString,
    )
    return call(req, timeout=timeout)


def subscribe(req):
    """Opens a Subscribe and returns it once its response headers arrived: the node sends
    them when the subscription is live, so a Send right after is delivered (no probing)."""
    call = channel.unary_stream(
        "/messaging.v1.Messenger/Subscribe",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.DeliveryBatch.FromString,
    )
    stream = call(req, timeout=60)
    headers = dict(stream.initial_metadata())  # blocks until the headers (or the call ends)
    if "meshwire-subscription-id" not in headers:
        raise SystemExit(f"Subscribe ended without its headers: {stream.code()} {stream.details()}")
    return stream


result = {}

# Subscribe, then Send, and read the delivery back.
sub = subscribe(pb.SubscribeRequest(topics=["py.events.>"], max_batch=8))
ready = threading.Event()
received = []


def reader():
    for batch in sub:
        for d in batch.deliveries:
            received.append(d)
            ready.set()
            return


t = threading.Thread(target=reader, daemon=True)
t.start()
r = unary("Send", pb.SendRequest(
    message=pb.Message(topic="py.events.created", payload=b"from-python", headers={"lang": "python"}),
    ack=pb.DELIVERED), pb.SendResponse)
sent_id = r.id
ready.wait(5)
sub.cancel()
result["send_delivered"] = r.delivered == 1
result["received_payload"] = received[0].message.payload.decode() if received else None
result["received_header"] = received[0].message.headers.get("lang") if received else None
result["received_id_matches"] = bool(received) and received[0].message.id == sent_id

# Respond: a responder subscription answering requests with the payload reversed.
responder = subscribe(pb.SubscribeRequest(topics=["py.rpc.reverse"]))


def respond_loop():
    for batch in responder:
        for d in batch.deliveries:
            unary("Respond", pb.RespondRequest(
                reply_to=d.reply_to, message=pb.Message(payload=d.message.payload[::-1])),
                pb.RespondResponse)


threading.Thread(target=respond_loop, daemon=True).start()
reply = unary("Request", pb.RequestRequest(
    message=pb.Message(topic="py.rpc.reverse", payload=b"abc"), timeout_ms=2000),
    pb.RequestResponse)
responder.cancel()
result["reply_payload"] = reply.reply.payload.decode() if reply else None
result["responder_peer"] = reply.responder_peer if reply else None

# A bad request gets INVALID_ARGUMENT with a readable message.
try:
    unary("Send", pb.SendRequest(message=pb.Message(topic="bad..topic", payload=b"x")), pb.SendResponse)
    result["invalid_code"] = "OK"
except grpc.RpcError as e:
    result["invalid_code"] = e.code().name
    result["invalid_details"] = e.details()

print(json.dumps(result))
