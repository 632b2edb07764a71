#!/usr/bin/python3
"""The API contract of proto/messaging/v1/messaging.proto, checked from Python (grpcio)
against a real cluster of three meshwire processes: A, B and C, static peers.

Usage: contract.py <stubs_dir> <grpc A> <grpc B> <grpc C> <id A> <id B> <id C>
Stubs come from protoc (--python_out); calls use grpcio's generic multi-callables.
Prints one JSON line per check: {"check": name, "ok": bool, "detail": "..."}; the ava
test (test/integration/contract/python-contract.test.ts) asserts every one.
"""
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from messaging.v1 import messaging_pb2 as pb  # noqa: E402

ADDR = {"A": sys.argv[2], "B": sys.argv[3], "C": sys.argv[4]}
NODE_ID = {"A": sys.argv[5], "B": sys.argv[6], "C": sys.argv[7]}
# A default Python client: grpcio refuses received metadata over 8 KB by default, which
# is what a node echoing a large input in an error message would run into.
CHANNELS = {k: grpc.insecure_channel(v) for k, v in ADDR.items()}
for ch in CHANNELS.values():
    grpc.channel_ready_future(ch).result(timeout=20)

RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append(name)
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)[:2000]}), flush=True)


def method(node, name, kind, resp_cls):
    ch = CHANNELS[node]
    path = f"/messaging.v1.Messenger/{name}"
    ser = lambda m: m.SerializeToString()  # noqa: E731
    if kind == "unary":
        return ch.unary_unary(path, request_serializer=ser, response_deserializer=resp_cls.FromString)
    if kind == "stream":
        return ch.unary_stream(path, request_serializer=ser, response_deserializer=resp_cls.FromString)
    if kind == "bidi":
        return ch.stream_stream(path, request_serializer=ser, response_deserializer=resp_cls.FromString)
    return ch.stream_unary(path, request_serializer=ser, response_deserializer=resp_cls.FromString)


def send(node, req, timeout=10, metadata=None):
    return method(node, "Send", "unary", pb.SendResponse)(req, timeout=timeout, metadata=metadata)


def request(node, req, timeout=10):
    return method(node, "Request", "unary", pb.RequestResponse)(req, timeout=timeout)


def respond(node, req, timeout=10):
    return method(node, "Respond", "unary", pb.RespondResponse)(req, timeout=timeout)


def status_of(fn):
    """(code name, details) of a call expected to fail; ("OK", result) when it does not."""
    try:
        return "OK", fn()
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""


class Sub:
    """A Subscribe stream read on a thread; ready once its response headers arrived."""

    def __init__(self, node, topics, queue_group=""):
        self.call = method(node, "Subscribe", "stream", pb.DeliveryBatch)(
            pb.SubscribeRequest(topics=topics, queue_group=queue_group, max_batch=64))
        self.headers = dict(self.call.initial_metadata())  # blocks until the node registered it
        self.deliveries = []
        self.cond = threading.Condition()
        self.error = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for batch in self.call:
                with self.cond:
                    self.deliveries.extend(batch.deliveries)
                    self.cond.notify_all()
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.error = e

    def wait(self, n, timeout=10):
        deadline = time.time() + timeout
        with self.cond:
            while len(self.deliveries) < n and time.time() < deadline:
                self.cond.wait(deadline - time.time())
            return list(self.deliveries)

    def close(self):
        self.call.cancel()


def wait_connected(timeout=20):
    """Until every node lists the other two as connected (ListPeers). Subscribe's headers
    cover the peers connected when it registers, so subscribe only after this."""
    deadline = time.time() + timeout
    for node in ADDR:
        list_peers = CHANNELS[node].unary_unary(
            "/messaging.v1.Peers/ListPeers", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=pb.ListPeersResponse.FromString)
        others = {NODE_ID[n] for n in ADDR if n != node}
        while True:
            peers = list_peers(pb.ListPeersRequest(), timeout=10).peers
            if others <= {p.id for p in peers if p.state == "connected"}:
                break
            if time.time() > deadline:
                raise SystemExit(f"node {node} is not connected to {others}: {peers}")
            time.sleep(0.02)


wait_connected()

# --- 9. Subscription readiness: headers once registered ---------------------------------
s = Sub("A", ["ready.x"])
sid = s.headers.get("meshwire-subscription-id", "")
r = send("A", pb.SendRequest(message=pb.Message(topic="ready.x", payload=b"1"), ack=pb.DELIVERED))
check("subscribe: headers carry the subscription id", sid.startswith("s"), s.headers)
check("subscribe: a send right after the headers is delivered (no probing)", r.delivered == 1, r)
s.close()

# --- 1. Message identity: a client's id never drops a message ---------------------------
sub_b = Sub("B", ["orders.>"])
acks = []
for i, topic in enumerate(["orders.created", "orders.paid", "orders.shipped"]):
    acks.append(send("A", pb.SendRequest(
        target=pb.Target(peer_id=NODE_ID["B"]),
        message=pb.Message(id="order-42", topic=topic, payload=f"p{i}".encode()),
        ack=pb.DELIVERED)))
check("identity: three DELIVERED sends with one client id each reach the subscriber",
      [a.delivered for a in acks] == [1, 1, 1], [a.delivered for a in acks])
check("identity: the client's id is echoed in the ack", all(a.id == "order-42" for a in acks))
for i in range(3):  # the default ack (ACCEPTED), same id again
    send("A", pb.SendRequest(target=pb.Target(peer_id=NODE_ID["B"]),
                             message=pb.Message(id="order-42", topic="orders.more", payload=b"q%d" % i)))
got = sub_b.wait(6)
check("identity: all six messages with id order-42 arrive, ids echoed",
      len(got) == 6 and all(d.message.id == "order-42" for d in got),
      [(d.message.id, d.message.payload) for d in got])
check("identity: source_peer names the sending node", all(d.source_peer == NODE_ID["A"] for d in got),
      {d.source_peer for d in got})
# By interest (no target): the same id again, every message arrives. Sub B's headers came
# once A had its interest: no probing.
before = len(got)
for i in range(3):
    send("A", pb.SendRequest(message=pb.Message(id="order-42", topic="orders.interest", payload=b"i%d" % i)))
got = sub_b.wait(before + 3)
check("identity: sends by interest with one id all arrive", len(got) == before + 3, len(got) - before)
sub_b.close()

# --- 2. Limits on client strings; bounded error messages --------------------------------
big = "x" * (8 * 1024 * 1024)
codes = set()
worst = 0
for _ in range(30):
    code, details = status_of(lambda: send("A", pb.SendRequest(
        target=pb.Target(peer_id=NODE_ID["B"]), message=pb.Message(id=big, topic="ids.big", payload=b"x"))))
    codes.add(code)
    worst = max(worst, len(details))
check("limits: an 8 MB message id is INVALID_ARGUMENT", codes == {"INVALID_ARGUMENT"}, codes)
check("limits: the error quotes at most ~100 characters of it", worst < 400, worst)
code, _ = status_of(lambda: send("A", pb.SendRequest(message=pb.Message(id="i" * 256, topic="ids.ok", payload=b"x"))))
check("limits: a 256-byte id is accepted", code == "OK", code)
code, _ = status_of(lambda: send("A", pb.SendRequest(message=pb.Message(id="i" * 257, topic="ids.ok", payload=b"x"))))
check("limits: a 257-byte id is INVALID_ARGUMENT", code == "INVALID_ARGUMENT", code)
huge = "q" * 100_000
for what, call in [
    ("queue_group", lambda: next(iter(method("A", "Subscribe", "stream", pb.DeliveryBatch)(
        pb.SubscribeRequest(topics=["a.b"], queue_group=huge), timeout=10)))),
    ("peer_id", lambda: send("A", pb.SendRequest(target=pb.Target(peer_id=huge),
                                                 message=pb.Message(topic="a.b", payload=b"x")))),
    ("address", lambda: send("A", pb.SendRequest(target=pb.Target(address=huge),
                                                 message=pb.Message(topic="a.b", payload=b"x")))),
    ("topic", lambda: send("A", pb.SendRequest(message=pb.Message(topic=huge, payload=b"x")))),
    ("header key", lambda: send("A", pb.SendRequest(message=pb.Message(topic="a.b", payload=b"x", headers={huge: "v"})))),
    ("header value", lambda: send("A", pb.SendRequest(message=pb.Message(topic="a.b", payload=b"x", headers={"k": huge})))),
    ("reply_to", lambda: respond("A", pb.RespondRequest(reply_to=huge, message=pb.Message(payload=b"x")))),
    ("subscription pattern", lambda: next(iter(method("A", "Subscribe", "stream", pb.DeliveryBatch)(
        pb.SubscribeRequest(topics=[huge]), timeout=10)))),
]:
    code, details = status_of(call)
    check(f"limits: a 100 KB {what} is INVALID_ARGUMENT with a short message",
          code == "INVALID_ARGUMENT" and len(details) < 600, (code, len(details), details[:200]))

# --- 6. Empty payloads on every RPC; replies carry the request topic ---------------------
sub_e = Sub("B", ["empty.>"])
r = send("A", pb.SendRequest(target=pb.Target(peer_id=NODE_ID["B"]),
                             message=pb.Message(topic="empty.send"), ack=pb.DELIVERED))
check("empty payload: Send is accepted and delivered", r.delivered == 1, r)
got = sub_e.wait(1)
check("empty payload: the subscriber gets an empty payload", len(got) == 1 and got[0].message.payload == b"", got)
sub_e.close()


def responder(node, topic, answer):
    """A subscription on `node` answering each request through `answer(delivery)`."""
    sub = Sub(node, [topic])

    def loop():
        seen = 0
        while True:
            ds = sub.wait(seen + 1, timeout=30)
            if len(ds) <= seen:
                return
            for d in ds[seen:]:
                try:
                    answer(d)
                except grpc.RpcError:
                    pass
            seen = len(ds)

    threading.Thread(target=loop, daemon=True).start()
    return sub


echo = responder("B", "svc.echo", lambda d: respond("B", pb.RespondRequest(
    reply_to=d.reply_to, message=pb.Message(payload=d.message.payload))))
r = request("A", pb.RequestRequest(target=pb.Target(peer_id=NODE_ID["B"]),
                                   message=pb.Message(topic="svc.echo"), timeout_ms=5000))
check("empty payload: Request and Respond accept it", r.reply.payload == b"", r)
check("reply topic: a reply without a topic carries the request's", r.reply.topic == "svc.echo", r.reply.topic)
check("reply: responder_peer names the node of the subscriber", r.responder_peer == NODE_ID["B"], r.responder_peer)
echo.close()

# --- 5. Replies through any node ---------------------------------------------------------
for via in ["C", "A"]:
    rs = responder("B", f"svc.via{via}", lambda d, via=via: respond(via, pb.RespondRequest(
        reply_to=d.reply_to, message=pb.Message(payload=b"from " + via.encode()))))
    code, r = status_of(lambda: request("A", pb.RequestRequest(
        target=pb.Target(peer_id=NODE_ID["B"]), message=pb.Message(topic=f"svc.via{via}", payload=b"q"),
        timeout_ms=5000)))
    check(f"reply through any node: delivered on B, answered through {via}",
          code == "OK" and r.reply.payload == b"from " + via.encode(), (code, r))
    rs.close()

# a late, a second and a forged reply, each through C
slow = Sub("B", ["svc.slow"])
code, _ = status_of(lambda: request("A", pb.RequestRequest(
    target=pb.Target(peer_id=NODE_ID["B"]), message=pb.Message(topic="svc.slow", payload=b"q"), timeout_ms=300)))
check("timeouts: a cross-node request nobody answers is DEADLINE_EXCEEDED", code == "DEADLINE_EXCEEDED", code)
token = slow.wait(1)[0].reply_to
code, details = status_of(lambda: respond("C", pb.RespondRequest(reply_to=token, message=pb.Message(payload=b"late"))))
check("reply through any node: a late reply is NOT_FOUND saying the requester timed out",
      code == "NOT_FOUND" and "timed out" in details, (code, details))
slow.close()

twice = Sub("B", ["svc.twice"])
fut = method("A", "Request", "unary", pb.RequestResponse).future(pb.RequestRequest(
    target=pb.Target(peer_id=NODE_ID["B"]), message=pb.Message(topic="svc.twice", payload=b"q"), timeout_ms=5000))
token = twice.wait(1)[0].reply_to
first = status_of(lambda: respond("C", pb.RespondRequest(reply_to=token, message=pb.Message(payload=b"1"))))
second = status_of(lambda: respond("A", pb.RespondRequest(reply_to=token, message=pb.Message(payload=b"2"))))
check("reply through any node: the first reply wins", first[0] == "OK" and fut.result().reply.payload == b"1",
      first)
check("reply through any node: a second reply is NOT_FOUND saying it was already answered",
      second[0] == "NOT_FOUND" and "already answered" in second[1], second)
twice.close()
forged = token.rsplit("~", 1)[0] + "~AAAAAAAAAAAAAAAA"
code, details = status_of(lambda: respond("C", pb.RespondRequest(reply_to=forged, message=pb.Message(payload=b"x"))))
check("reply tokens: a forged token is INVALID_ARGUMENT", code == "INVALID_ARGUMENT", (code, details))
code, details = status_of(lambda: respond("C", pb.RespondRequest(reply_to="garbage", message=pb.Message(payload=b"x"))))
check("reply tokens: garbage is INVALID_ARGUMENT", code == "INVALID_ARGUMENT", (code, details))

# --- 4. Exact statuses: 100 cross-node timeouts, deadlines on every path ------------------
silent = Sub("B", ["svc.silent"])
req_call = method("A", "Request", "unary", pb.RequestResponse)


def one_timeout(i):
    try:
        req_call(pb.RequestRequest(target=pb.Target(peer_id=NODE_ID["B"]),
                                   message=pb.Message(topic="svc.silent", payload=b"%d" % i), timeout_ms=250),
                 timeout=10)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


with ThreadPoolExecutor(max_workers=20) as ex:
    codes = list(ex.map(one_timeout, range(100)))
counts = {c: codes.count(c) for c in set(codes)}
check("timeouts: 100 cross-node Request timeouts are 100 DEADLINE_EXCEEDED", counts == {"DEADLINE_EXCEEDED": 100},
      counts)
# the gRPC deadline alone (no timeout_ms)
code, _ = status_of(lambda: request("A", pb.RequestRequest(
    target=pb.Target(peer_id=NODE_ID["B"]), message=pb.Message(topic="svc.silent", payload=b"d")), timeout=0.4))
check("timeouts: the gRPC deadline of a cross-node Request is DEADLINE_EXCEEDED", code == "DEADLINE_EXCEEDED", code)
# RequestStream entries
rs_call = method("A", "RequestStream", "bidi", pb.RequestStreamResponse)
reqs = [pb.RequestStreamRequest(request_id=f"r{i}", target=pb.Target(peer_id=NODE_ID["B"]),
                                message=pb.Message(topic="svc.silent", payload=b"s"), timeout_ms=250)
        for i in range(10)]
outs = list(rs_call(iter(reqs), timeout=20))
check("timeouts: RequestStream entries time out with error_code 4 (DEADLINE_EXCEEDED)",
      len(outs) == 10 and all(o.error_code == 4 for o in outs), [o.error_code for o in outs])
silent.close()
# Send with DELIVERED to a subscriber whose node never acks in time: a dead address
code, _ = status_of(lambda: send("A", pb.SendRequest(
    target=pb.Target(address="127.0.0.1:9"), message=pb.Message(topic="dead.x", payload=b"x"),
    ack=pb.DELIVERED), timeout=0.5))
check("timeouts: Send DELIVERED that cannot complete by the deadline is DEADLINE_EXCEEDED or UNAVAILABLE",
      code in ("DEADLINE_EXCEEDED", "UNAVAILABLE"), code)
code, details = status_of(lambda: request("A", pb.RequestRequest(message=pb.Message(topic="nobody.home", payload=b"x"))))
check("statuses: a Request with no responder anywhere is UNAVAILABLE at once", code == "UNAVAILABLE", (code, details))
# a caller's cancel: the caller sees CANCELLED, and the responder's node is told
waiter = Sub("B", ["svc.cancel"])
fut = req_call.future(pb.RequestRequest(target=pb.Target(peer_id=NODE_ID["B"]),
                                        message=pb.Message(topic="svc.cancel", payload=b"x"), timeout_ms=10000))
token = waiter.wait(1)[0].reply_to
fut.cancel()
check("statuses: a cancelled Request is CANCELLED at the caller", fut.cancelled(), fut)
time.sleep(0.2)  # the cancel travels A -> B; give it the head start a real late reply has
late = status_of(lambda: respond("C", pb.RespondRequest(reply_to=token, message=pb.Message(payload=b"x"))))
check("statuses: a reply to a cancelled request is NOT_FOUND saying it was cancelled",
      late[0] == "NOT_FOUND" and "cancelled" in late[1], late)
waiter.close()

# --- 7/8. Oversized metadata, malformed bodies -------------------------------------------
for size in (100_000, 1_000_000):
    code, details = status_of(lambda: send("C", pb.SendRequest(message=pb.Message(topic="md.x", payload=b"x")),
                                           timeout=10, metadata=[("x-big", "m" * size)]))
    check(f"metadata: {size // 1000} KB of metadata gets RESOURCE_EXHAUSTED, not a hang",
          code == "RESOURCE_EXHAUSTED", (code, details[:200]))
raw = CHANNELS["C"].unary_unary("/messaging.v1.Messenger/Send")
code, details = status_of(lambda: raw(b"\xff\xff\xff\xff", timeout=10))
check("malformed body: a body that is not protobuf is INVALID_ARGUMENT", code == "INVALID_ARGUMENT", (code, details))

# --- after the battery every node still serves ------------------------------------------
for n in ("A", "B", "C"):
    code, _ = status_of(lambda: send(n, pb.SendRequest(message=pb.Message(topic="still.here", payload=b"x"))))
    check(f"after the battery node {n} still serves", code == "OK", code)

print(json.dumps({"done": len(RESULTS)}), flush=True)
