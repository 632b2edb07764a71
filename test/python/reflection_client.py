#!/usr/bin/python3
"""Reads meshwire's schema through server reflection alone, as grpcurl-like tools do.

Usage: reflection_client.py <stubs_dir> <node_address>
stubs_dir holds grpc/reflection/v1/reflection_pb2.py (protoc --python_out from proto/); the
messaging protos are NOT generated: the SendRequest class is built from the descriptors
the server returns, loaded into a fresh descriptor pool. Prints one JSON object.
"""
import importlib.util
import json
import os
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# Loaded by path: the stubs' top-level package "grpc" would clash with grpcio's.
_spec = importlib.util.spec_from_file_location(
    "reflection_pb2", os.path.join(sys.argv[1], "grpc", "reflection", "v1", "reflection_pb2.py")
)
rpb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rpb)

address = sys.argv[2]
channel = grpc.insecure_channel(address)
grpc.channel_ready_future(channel).result(timeout=10)
info = channel.stream_stream(
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    request_serializer=lambda m: m.SerializeToString(),
    response_deserializer=rpb.ServerReflectionResponse.FromString,
)
requests = [
    rpb.ServerReflectionRequest(list_services=""),
    rpb.ServerReflectionRequest(file_containing_symbol="messaging.v1.Messenger"),
    rpb.ServerReflectionRequest(file_containing_symbol="messaging.v1.Message.HeadersEntry"),
    rpb.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
]
answers = list(info(iter(requests), timeout=10))

result = {"services": [s.name for s in answers[0].list_services_response.service]}
files = [
    descriptor_pb2.FileDescriptorProto.FromString(b)
    for b in answers[1].file_descriptor_response.file_descriptor_proto
]
result["file_names"] = [f.name for f in files]
result["nested_symbol_file"] = [
    descriptor_pb2.FileDescriptorProto.FromString(b).name
    for b in answers[2].file_descriptor_response.file_descriptor_proto
]
result["unknown_symbol_code"] = answers[3].error_response.error_code

pool = descriptor_pool.DescriptorPool()
for f in files:
    pool.Add(f)  # rejects malformed descriptors (bad map entries, unresolved types)
send_request_desc = pool.FindMessageTypeByName("messaging.v1.SendRequest")
message_desc = pool.FindMessageTypeByName("messaging.v1.Message")
service = pool.FindServiceByName("messaging.v1.Messenger")
result["message_nested_types"] = [n.name for n in message_desc.nested_types]
result["headers_is_map"] = message_desc.fields_by_name["headers"].message_type.GetOptions().map_entry
result["send_request_fields"] = [f.name for f in send_request_desc.fields]
result["methods"] = [m.name for m in service.methods]
# Source info rides along: the comments of the proto are there for `describe`.
result["has_comments"] = any(
    "Deliver one message" in loc.leading_comments for loc in files[0].source_code_info.location
)

factory = message_factory.MessageFactory(pool)
SendRequest = factory.GetPrototype(send_request_desc)
SendResponse = factory.GetPrototype(pool.FindMessageTypeByName("messaging.v1.SendResponse"))
req = SendRequest()
req.message.topic = "py.reflected"
req.message.payload = b"x"
req.message.headers["lang"] = "python"
req.fail_fast = True
send = channel.unary_unary(
    "/messaging.v1.Messenger/Send",
    request_serializer=lambda m: m.SerializeToString(),
    response_deserializer=SendResponse.FromString,
)
result["send_id"] = send(req, timeout=10).id
print(json.dumps(result))
