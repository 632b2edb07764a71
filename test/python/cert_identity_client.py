#!/usr/bin/python3
"""meshwire identities from client certificates, from Python (grpcio): calls over mTLS with
a client certificate and, unless a case says so, no token.

Usage: cert_identity_client.py <stubs_dir> <node_address> <ca_file> <cases.json>
cases.json: [{"label", "cert", "key", "call": "send"|"sub"|"peers", "topic", "token"?}]
Prints one JSON object: label -> [status code name, details].
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from messaging.v1 import messaging_pb2 as pb  # noqa: E402

address, ca_file, cases_file = sys.argv[2:5]
with open(ca_file, "rb") as f:
    ca = f.read()
with open(cases_file) as f:
    cases = json.load(f)

channels = {}


def channel_for(cert_file, key_file):
    """One channel per client certificate (the identity belongs to the connection)."""
    if cert_file not in channels:
        with open(cert_file, "rb") as f:
            cert = f.read()
        with open(key_file, "rb") as f:
            key = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                             certificate_chain=cert)
        ch = grpc.secure_channel(address, creds)
        grpc.channel_ready_future(ch).result(timeout=10)
        channels[cert_file] = ch
    return channels[cert_file]


def run(case):
    ch = channel_for(case["cert"], case["key"])
    md = [("authorization", f"Bearer {case['token']}")] if case.get("token") else []
    try:
        if case["call"] == "send":
            mc = ch.unary_unary("/messaging.v1.Messenger/Send",
                                request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=pb.SendResponse.FromString)
            mc(pb.SendRequest(message=pb.Message(topic=case["topic"], payload=b"py")),
               metadata=md, timeout=10)
            return "OK", ""
        if case["call"] == "peers":
            mc = ch.unary_unary("/messaging.v1.Peers/ListPeers",
                                request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=pb.ListPeersResponse.FromString)
            mc(pb.ListPeersRequest(), metadata=md, timeout=10)
            return "OK", ""
        # sub: OK once the response headers say the subscription is live.
        mc = ch.unary_stream("/messaging.v1.Messenger/Subscribe",
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=pb.DeliveryBatch.FromString)
        it = mc(pb.SubscribeRequest(topics=[case["topic"]]), metadata=md, timeout=10)
        try:
            if "meshwire-subscription-id" in dict(it.initial_metadata() or ()):
                return "OK", ""
            next(iter(it))  # a refused call raises its status here
            return "NO_HEADERS", "a delivery came without the subscription headers"
        finally:
            it.cancel()
    except grpc.RpcError as e:
        return e.code().name, e.details()


print(json.dumps({c["label"]: run(c) for c in cases}))
