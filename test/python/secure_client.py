#!/usr/bin/python3
"""meshwire security from Python (grpcio): TLS, bearer tokens and topic permissions.

Usage: secure_client.py <stubs_dir> <node_address> <ca_file> <good_token> <restricted_token>
The node serves TLS with a certificate for 127.0.0.1 signed by ca_file. Prints one JSON
object with the status code names each call got.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from messaging.v1 import messaging_pb2 as pb  # noqa: E402

address, ca_file, good, restricted = sys.argv[2:6]
with open(ca_file, "rb") as f:
    ca = f.read()
channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca))
grpc.channel_ready_future(channel).result(timeout=10)


def call(name, req, resp_cls, token=None, stream=False):
    md = [("authorization", f"Bearer {token}")] if token else []
    method = channel.unary_stream if stream else channel.unary_unary
    mc = method(f"/messaging.v1.Messenger/{name}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=resp_cls.FromString)
    try:
        r = mc(req, metadata=md, timeout=5)
        if stream:
            next(iter(r))
        return "OK", ""
    except grpc.RpcError as e:
        if stream and e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return "OK", ""  # the subscription was accepted and stayed open
        return e.code().name, e.details()


def send(topic, token):
    return call("Send", pb.SendRequest(message=pb.Message(topic=topic, payload=b"py")),
                pb.SendResponse, token)


def sub(pattern, token):
    """("OK", "") once the node's response headers say the subscription is live (no
    waiting on a deadline); the status of a refused one."""
    md = [("authorization", f"Bearer {token}")]
    mc = channel.unary_stream("/messaging.v1.Messenger/Subscribe",
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=pb.DeliveryBatch.FromString)
    it = mc(pb.SubscribeRequest(topics=[pattern]), metadata=md, timeout=10)
    try:
        # Blocks until the headers, or the end of a refused call (then there are none).
        if "meshwire-subscription-id" in dict(it.initial_metadata() or ()):
            return "OK", ""
        next(iter(it))  # a refused call raises its status here
        return "NO_HEADERS", "a delivery came without the subscription headers"
    except grpc.RpcError as e:
        return e.code().name, e.details()
    finally:
        it.cancel()


result = {
    "no_token": send("orders.eu.created", None),
    "wrong_token": send("orders.eu.created", "wrong-token-0123456789abcdef"),
    "good_send": send("anything.at.all", good),
    "allowed_send": send("orders.eu.created", restricted),
    "denied_send": send("orders.internal.audit", restricted),
    "outside_send": send("billing.x", restricted),
    "allowed_sub": sub("orders.eu.status", restricted),
    "denied_sub": sub("orders.>", restricted),
    "outside_sub": sub("*.eu.status", restricted),
}
print(json.dumps(result))
