import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import test from 'ava';
import { FileDescriptorProto } from 'protobufjs/ext/descriptor';
import { serviceConstructors } from '../../../src/api';
import { fastMessengerDefinition } from '../../../src/api/codec';
import type { ReflectionRequest } from '../../../src/api/reflection';
import { REFLECTION_SERVICES, Reflection, loadDescriptorSet } from '../../../src/api/reflection';
import { MalformedBody, malformedBodyError, tolerant } from '../../../src/api/request-body';

const SERVICES = ['messaging.v1.Messenger', 'messaging.v1.Peers', ...REFLECTION_SERVICES];
const reflection = new Reflection(loadDescriptorSet(), SERVICES);

/** The request as the decoder hands it over: the oneof case named in message_request. */
const ask = (r: Reflection, req: ReflectionRequest) =>
  r.answer({ ...req, message_request: Object.keys(req).find(k => k !== 'host') });

/** Names of the files of a file_descriptor_response, in order. */
function fileNames(res: ReturnType<Reflection['answer']>): string[] {
  const bytes = res.file_descriptor_response?.file_descriptor_proto ?? [];
  return bytes.map(b => (FileDescriptorProto.decode(b) as unknown as { name: string }).name);
}

test('list_services names the services given, and echoes host and request', t => {
  const res = ask(reflection, { host: 'h', list_services: '' });
  t.deepEqual(
    res.list_services_response?.service.map(s => s.name),
    SERVICES
  );
  t.is(res.valid_host, 'h');
  t.is(res.original_request.list_services, '');
});

test('file_containing_symbol: services, methods, messages, nested types, fields, enums and values', t => {
  for (const symbol of [
    'messaging.v1.Messenger',
    'messaging.v1.Messenger.Subscribe',
    '.messaging.v1.SendRequest',
    'messaging.v1.Message.HeadersEntry',
    'messaging.v1.Message.headers',
    'messaging.v1.Target.kind',
    'messaging.v1.AckMode',
    'messaging.v1.DELIVERED',
    'messaging.v1',
  ]) {
    const res = ask(reflection, { file_containing_symbol: symbol });
    t.is(res.error_response, undefined, symbol);
    t.deepEqual(fileNames(res), ['messaging/v1/messaging.proto'], symbol);
  }
  t.deepEqual(
    fileNames(ask(reflection, { file_containing_symbol: 'grpc.health.v1.Health.Watch' })),
    ['grpc/health/v1/health.proto']
  );
});

test('file_by_filename serves protoc bytes; unknown names are NOT_FOUND error responses', t => {
  const res = ask(reflection, { file_by_filename: 'grpc/reflection/v1alpha/reflection.proto' });
  t.deepEqual(fileNames(res), ['grpc/reflection/v1alpha/reflection.proto']);
  for (const req of [
    { file_by_filename: 'nope.proto' },
    { file_containing_symbol: 'messaging.v1.Nope' },
    {
      file_containing_extension: { containing_type: 'messaging.v1.Message', extension_number: 100 },
    },
    { all_extension_numbers_of_type: 'messaging.v1.Nope' },
  ]) {
    const err = ask(reflection, req).error_response;
    t.is(err?.error_code, status.NOT_FOUND, JSON.stringify(req));
    t.regex(err?.error_message ?? '', /not found/);
  }
  t.is(ask(reflection, {}).error_response?.error_code, status.INVALID_ARGUMENT);
});

test('all_extension_numbers_of_type is empty for a message without extensions', t => {
  t.deepEqual(ask(reflection, { all_extension_numbers_of_type: 'messaging.v1.Message' }), {
    valid_host: '',
    original_request: {
      all_extension_numbers_of_type: 'messaging.v1.Message',
      message_request: 'all_extension_numbers_of_type',
    },
    all_extension_numbers_response: {
      base_type_name: 'messaging.v1.Message',
      extension_number: [],
    },
  });
});

test('extensions: file_containing_extension and all_extension_numbers_of_type, with imports', t => {
  const dir = mkdtempSync(join(tmpdir(), 'mw-ext-'));
  writeFileSync(
    join(dir, 'base.proto'),
    'syntax = "proto2";\npackage ext.v1;\nmessage Base {\n  extensions 100 to 200;\n}\n'
  );
  writeFileSync(
    join(dir, 'more.proto'),
    'syntax = "proto2";\npackage ext.v1;\nimport "base.proto";\n' +
      'extend Base {\n  optional string tag = 150;\n}\n' +
      'message Holder {\n  extend Base {\n    optional int32 level = 101;\n  }\n}\n' +
      'service Echo {\n  rpc Get(Holder) returns (Holder);\n}\n'
  );
  const out = join(dir, 'set.binpb');
  execFileSync('protoc', [`-I${dir}`, '--include_imports', '-o', out, 'more.proto']);
  const r = new Reflection(readFileSync(out), ['ext.v1.Echo']);
  t.deepEqual(
    ask(r, { all_extension_numbers_of_type: 'ext.v1.Base' }).all_extension_numbers_response,
    { base_type_name: 'ext.v1.Base', extension_number: [101, 150] }
  );
  t.deepEqual(
    fileNames(
      ask(r, {
        file_containing_extension: { containing_type: 'ext.v1.Base', extension_number: 101 },
      })
    ),
    ['more.proto', 'base.proto']
  );
  t.deepEqual(fileNames(ask(r, { file_containing_symbol: 'ext.v1.Holder.level' })), [
    'more.proto',
    'base.proto',
  ]);
  t.throws(() => new Reflection(readFileSync(out), ['ext.v1.Missing']), {
    name: 'InvalidArgumentError',
  });
});

test('a deserializer error becomes a MalformedBody; the client message is bounded', t => {
  const d = tolerant(() => {
    throw new RangeError('x'.repeat(1000));
  });
  const body = d(Buffer.from([0xff]));
  t.true(body instanceof MalformedBody);
  const err = malformedBodyError((body as MalformedBody).reason);
  t.is(err.code, 'INVALID_ARGUMENT');
  t.regex(err.message, /^malformed request body: x+\.\.\.$/);
  t.true(err.message.length < 200);
});

test('the fast codec rejects a string that runs past the end of the body', t => {
  const def = fastMessengerDefinition(serviceConstructors().Messenger.service);
  // SubscribeRequest.topics: length 5, 2 bytes present
  t.throws(() => def.Subscribe.requestDeserialize(Buffer.from([0x0a, 0x05, 0x61, 0x62])), {
    instanceOf: RangeError,
  });
  const ok = def.Subscribe.requestDeserialize(Buffer.from([0x0a, 0x03, 0x61, 0x2e, 0x62])) as {
    topics: string[];
  };
  t.deepEqual(ok.topics, ['a.b']);
});
