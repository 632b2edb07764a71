#!/usr/bin/python3
"""RequestMany from a non-JavaScript client (grpcio), and responders to gather from.

Usage:
  request_many.py <stubs_dir> <node_address> responder <topic> <queue_group|-> <payload>
      [--delay-ms N] [--silent]
    Subscribes to <topic> and answers each request with <payload> (after N ms), printing
    one JSON line per event: {"event": "ready"} once subscribed, {"event": "got"} per
    request, {"event": "responded", "code": ..., "details": ...} per Respond outcome.
    --silent: receives requests but never answers. Runs until killed.
  request_many.py <stubs_dir> <node_address> gather '<RequestManyRequest as JSON>'
    Calls RequestMany and prints one JSON object: the replies (payload, responder_peer,
    at_ms since the call), the final status code name and details, and elapsed_ms.
Messages are built by protoc's Python classes (json_format), calls through grpcio's
generic multi-callables.
"""
import json
import sys
import threading
import time

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from messaging.v1 import messaging_pb2 as pb  # noqa: E402

address = sys.argv[2]
mode = sys.argv[3]
channel = grpc.insecure_channel(address)
grpc.channel_ready_future(channel).result(timeout=20)


def emit(obj):
    print(json.dumps(obj), flush=True)


def respond(reply_to, payload):
    call = channel.unary_unary(
        "/messaging.v1.Messenger/Respond",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.RespondResponse.FromString,
    )
    try:
        call(pb.RespondRequest(reply_to=reply_to, message=pb.Message(payload=payload)), timeout=10)
        emit({"event": "responded", "code": "OK", "details": ""})
    except grpc.RpcError as e:
        emit({"event": "responded", "code": e.code().name, "details": e.details()})


def responder(topic, group, payload, delay_ms, silent):
    call = channel.unary_stream(
        "/messaging.v1.Messenger/Subscribe",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.DeliveryBatch.FromString,
    )
    stream = call(pb.SubscribeRequest(topics=[topic], queue_group="" if group == "-" else group))
    headers = dict(stream.initial_metadata())
    if "meshwire-subscription-id" not in headers:
        raise SystemExit(f"Subscribe ended without its headers: {stream.code()} {stream.details()}")
    emit({"event": "ready"})
    for batch in stream:
        for d in batch.deliveries:
            emit({"event": "got", "reply_to_set": bool(d.reply_to)})
            if silent:
                continue
            if delay_ms > 0:
                threading.Timer(delay_ms / 1000, respond, (d.reply_to, payload)).start()
            else:
                respond(d.reply_to, payload)


def gather(request_json):
    req = json_format.Parse(request_json, pb.RequestManyRequest())
    call = channel.unary_stream(
        "/messaging.v1.Messenger/RequestMany",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=pb.RequestManyResponse.FromString,
    )
    started = time.monotonic()
    replies = []
    code, details = "OK", ""
    try:
        for r in call(req, timeout=60):
            replies.append({
                "payload": r.reply.payload.decode(),
                "topic": r.reply.topic,
                "responder_peer": r.responder_peer,
                "at_ms": round((time.monotonic() - started) * 1000),
            })
    except grpc.RpcError as e:
        code, details = e.code().name, e.details()
    emit({
        "replies": replies,
        "code": code,
        "details": details,
        "elapsed_ms": round((time.monotonic() - started) * 1000),
    })


if mode == "responder":
    args = sys.argv[4:]
    delay = int(args[args.index("--delay-ms") + 1]) if "--delay-ms" in args else 0
    responder(args[0], args[1], args[2].encode(), delay, "--silent" in args)
elif mode == "gather":
    gather(sys.argv[4])
else:
    raise SystemExit(f"unknown mode {mode}")
