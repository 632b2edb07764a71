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
    call = channel.unary_stream(
        "/messaging.v1.Messenger/Subscribe",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.DeliveryBatch.FromString,
    )
    return call(req)


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
# Keep sending until the subscription (registered asynchronously) sees one.
sent_id = None
for _ in range(50):
    r = unary("Send", pb.SendRequest(
        message=pb.Message(topic="py.events.created", payload=b"from-python", headers={"lang": "python"}),
        ack=pb.DELIVERED), pb.SendResponse)
    if r.delivered > 0:
        sent_id = r.id
        break
    ready.wait(0.1)
ready.wait(5)
sub.cancel()
result["send_delivered"] = bool(sent_id)
result["received_payload"] = received[0].message.payload.decode() if received else None
result["received_header"] = received[0].message.headers.get("lang") if received else None
result["received_id_matches"] = bool(received) and received[0].message.id == sent_id

# Respond: a responder subscription answering requests with the payload reversed.
responder = subscribe(pb.SubscribeRequest(topics=["py.rpc.reverse"]))
answered = threading.Event()


def respond_loop():
    for batch in responder:
        for d in batch.deliveries:
            unary("Respond", pb.RespondRequest(
                reply_to=d.reply_to, message=pb.Message(payload=d.message.payload[::-1])),
                pb.RespondResponse)
            answered.set()


threading.Thread(target=respond_loop, daemon=True).start()
reply = None
for _ in range(50):
    try:
        reply = unary("Request", pb.RequestRequest(
            message=pb.Message(topic="py.rpc.reverse", payload=b"abc"), timeout_ms=2000),
            pb.RequestResponse)
        break
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAVAILABLE:  # no responders yet
            raise
        answered.wait(0.1)
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
