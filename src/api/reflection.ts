/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) served from the descriptors
 * protoc itself produced: proto/descriptors.binpb, a FileDescriptorSet made by
 * `make descriptors` with imports and source info. The FileDescriptorProto bytes go to
 * clients unchanged, so grpcurl, buf curl and protobuf descriptor pools see exactly the
 * files of proto/ (real file names, snake_case fields, `HeadersEntry` map entries,
 * comments), never a rebuild from proto-loader objects.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  Server,
  ServerDuplexStream,
  ServiceDefinition,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Type } from 'protobufjs';
import { Reader, Root } from 'protobufjs';
import { InvalidArgumentError, NotFoundError } from '../common';
import { protoDir } from './proto';
import { tolerant } from './request-body';
import { grpcCodeOf } from './status';

/** The committed descriptor set, relative to proto/. */
export const DESCRIPTOR_SET_FILE = 'descriptors.binpb';

/** One file of the set: its name, direct imports and the exact bytes protoc wrote. */
interface FileEntry {
  readonly name: string;
  readonly dependencies: readonly string[];
  readonly bytes: Buffer;
}

/** The fields of one protobuf message we need: length-delimited ones and varints. */
interface Fields {
  readonly bytes: Map<number, Uint8Array[]>;
  readonly varints: Map<number, number>;
}

function fieldsOf(data: Uint8Array): Fields {
  const out: Fields = { bytes: new Map(), varints: new Map() };
  const r = Reader.create(data);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const n = tag >>> 3;
    if ((tag & 7) === 2) {
      const list = out.bytes.get(n) ?? [];
      list.push(r.bytes());
      out.bytes.set(n, list);
    } else if ((tag & 7) === 0) {
      out.varints.set(n, r.int32());
    } else {
      r.skipType(tag & 7);
    }
  }
  return out;
}

const text = (b: Uint8Array | undefined): string =>
  b ? Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8') : '';
const first = (m: Fields, n: number): string => text(m.bytes.get(n)?.[0]);
const all = (m: Fields, n: number): Uint8Array[] => m.bytes.get(n) ?? [];

/** Every symbol of a descriptor set, the file defining it, and the extensions. */
export class DescriptorIndex {
  readonly files = new Map<string, FileEntry>();
  /** Fully qualified name (no leading dot) of every symbol -> file name. */
  readonly symbols = new Map<string, string>();
  /** Message types (fully qualified) -> extension number -> file name. */
  readonly extensions = new Map<string, Map<number, string>>();
  readonly services: string[] = [];

  constructor(fileDescriptorSet: Uint8Array) {
    for (const bytes of all(fieldsOf(fileDescriptorSet), 1)) this.addFile(Buffer.from(bytes));
    for (const f of this.files.values()) {
      for (const dep of f.dependencies) {
        if (!this.files.has(dep)) {
          throw new InvalidArgumentError(
            `descriptor set: ${f.name} imports ${dep}, which the set does not contain (generate it with --include_imports)`
          );
        }
      }
    }
  }

  private addFile(bytes: Buffer): void {
    const f = fieldsOf(bytes);
    const name = first(f, 1);
    const pkg = first(f, 2);
    const scope = pkg ? `${pkg}.` : '';
    this.files.set(name, { name, dependencies: all(f, 3).map(text), bytes });
    if (pkg) {
      // Packages are symbols too (grpcurl asks for them); the first file wins.
      const parts = pkg.split('.');
      for (let i = 1; i <= parts.length; i++) {
        const p = parts.slice(0, i).join('.');
        if (!this.symbols.has(p)) this.symbols.set(p, name);
      }
    }
    for (const m of all(f, 4)) this.addMessage(name, scope, m);
    for (const e of all(f, 5)) this.addEnum(name, scope, e);
    for (const e of all(f, 7)) this.addExtension(name, scope, e);
    for (const s of all(f, 6)) {
      const sf = fieldsOf(s);
      const full = scope + first(sf, 1);
      this.symbols.set(full, name);
      this.services.push(full);
      for (const m of all(sf, 2)) this.symbols.set(`${full}.${first(fieldsOf(m), 1)}`, name);
    }
  }

  private addMessage(file: string, scope: string, bytes: Uint8Array): void {
    const m = fieldsOf(bytes);
    const full = scope + first(m, 1);
    this.symbols.set(full, file);
    if (!this.extensions.has(full)) this.extensions.set(full, new Map());
    for (const field of all(m, 2)) this.symbols.set(`${full}.${first(fieldsOf(field), 1)}`, file);
    for (const oneof of all(m, 8)) this.symbols.set(`${full}.${first(fieldsOf(oneof), 1)}`, file);
    for (const nested of all(m, 3)) this.addMessage(file, `${full}.`, nested);
    for (const e of all(m, 4)) this.addEnum(file, `${full}.`, e);
    for (const e of all(m, 6)) this.addExtension(file, `${full}.`, e);
  }

  private addEnum(file: string, scope: string, bytes: Uint8Array): void {
    const e = fieldsOf(bytes);
    const full = scope + first(e, 1);
    this.symbols.set(full, file);
    // Enum values are scoped as siblings of their enum (protobuf's C++ rules).
    for (const v of all(e, 2)) this.symbols.set(scope + first(fieldsOf(v), 1), file);
  }

  private addExtension(file: string, scope: string, bytes: Uint8Array): void {
    const x = fieldsOf(bytes);
    this.symbols.set(scope + first(x, 1), file);
    const extendee = first(x, 2).replace(/^\./, '');
    const byNumber = this.extensions.get(extendee) ?? new Map<number, string>();
    byNumber.set(x.varints.get(3) ?? 0, file); // FieldDescriptorProto.number
    this.extensions.set(extendee, byNumber);
  }

  /** The file and its transitive imports, the file first, each once. */
  withDependencies(fileName: string): Buffer[] {
    const out: Buffer[] = [];
    const seen = new Set<string>();
    const visit = (name: string): void => {
      if (seen.has(name)) return;
      seen.add(name);
      const f = this.files.get(name);
      if (!f) return;
      out.push(f.bytes);
      for (const dep of f.dependencies) visit(dep);
    };
    visit(fileName);
    return out;
  }
}

/** Reads proto/descriptors.binpb. */
export function loadDescriptorSet(): Buffer {
  return readFileSync(join(protoDir(), DESCRIPTOR_SET_FILE));
}

// Request and response shapes of grpc/reflection/v1/reflection.proto (field names kept).
export interface ReflectionRequest {
  host?: string;
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type?: string; extension_number?: number };
  all_extension_numbers_of_type?: string;
  list_services?: string;
  message_request?: string;
}

export interface ReflectionResponse {
  valid_host: string;
  original_request: ReflectionRequest;
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  list_services_response?: { service: Array<{ name: string }> };
  error_response?: { error_code: number; error_message: string };
}

/** Answers reflection requests from a DescriptorIndex, for the services a server offers. */
export class Reflection {
  readonly index: DescriptorIndex;
  private readonly services: readonly string[];

  /** Throws if a service is missing from the set: reflection could not describe it. */
  constructor(fileDescriptorSet: Uint8Array, services: readonly string[]) {
    this.index = new DescriptorIndex(fileDescriptorSet);
    for (const s of services) {
      if (!this.index.services.includes(s)) {
        throw new InvalidArgumentError(
          `service ${s} is not in the descriptor set (run make descriptors)`
        );
      }
    }
    this.services = [...services];
  }

  answer(req: ReflectionRequest): ReflectionResponse {
    const base = { valid_host: req.host ?? '', original_request: req };
    try {
      return { ...base, ...this.body(req) };
    } catch (err) {
      return {
        ...base,
        error_response: { error_code: grpcCodeOf(err), error_message: (err as Error).message },
      };
    }
  }

  private files(fileName: string): Pick<ReflectionResponse, 'file_descriptor_response'> {
    return {
      file_descriptor_response: { file_descriptor_proto: this.index.withDependencies(fileName) },
    };
  }

  private body(
    req: ReflectionRequest
  ): Omit<ReflectionResponse, 'valid_host' | 'original_request'> {
    const ix = this.index;
    switch (req.message_request) {
      case 'list_services':
        return { list_services_response: { service: this.services.map(name => ({ name })) } };
      case 'file_by_filename': {
        const name = req.file_by_filename ?? '';
        if (!ix.files.has(name)) throw new NotFoundError(`file not found: ${name}`);
        return this.files(name);
      }
      case 'file_containing_symbol': {
        const symbol = (req.file_containing_symbol ?? '').replace(/^\./, '');
        const file = ix.symbols.get(symbol);
        if (file === undefined) throw new NotFoundError(`symbol not found: ${symbol}`);
        return this.files(file);
      }
      case 'file_containing_extension': {
        const type = (req.file_containing_extension?.containing_type ?? '').replace(/^\./, '');
        const number = req.file_containing_extension?.extension_number ?? 0;
        const file = ix.extensions.get(type)?.get(number);
        if (file === undefined) {
          throw new NotFoundError(`extension not found: ${type} field ${number}`);
        }
        return this.files(file);
      }
      case 'all_extension_numbers_of_type': {
        const type = (req.all_extension_numbers_of_type ?? '').replace(/^\./, '');
        const numbers = ix.extensions.get(type);
        if (!numbers) throw new NotFoundError(`type not found: ${type}`);
        return {
          all_extension_numbers_response: {
            base_type_name: type,
            extension_number: [...numbers.keys()].sort((a, b) => a - b),
          },
        };
      }
      default:
        throw new InvalidArgumentError('reflection request has no message_request set');
    }
  }
}

let codecRoot: Root | undefined;
function reflectionType(name: string): Type {
  if (!codecRoot) {
    codecRoot = new Root();
    codecRoot.loadSync(join(protoDir(), 'grpc/reflection/v1/reflection.proto'), {
      keepCase: true,
    });
    codecRoot.resolveAll();
  }
  return codecRoot.lookupType(`grpc.reflection.v1.${name}`);
}

/** v1 and v1alpha: same messages on the wire, different package. */
export const REFLECTION_SERVICES = [
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
] as const;

function definition(serviceName: string): ServiceDefinition {
  const req = reflectionType('ServerReflectionRequest');
  const res = reflectionType('ServerReflectionResponse');
  const encode =
    (t: Type) =>
    (v: unknown): Buffer =>
      Buffer.from(t.encode(t.fromObject(v as Record<string, unknown>)).finish());
  const decode =
    (t: Type) =>
    (b: Buffer): unknown =>
      t.decode(b);
  return {
    ServerReflectionInfo: {
      path: `/${serviceName}/ServerReflectionInfo`,
      requestStream: true,
      responseStream: true,
      requestSerialize: encode(req),
      requestDeserialize: tolerant(decode(req)),
      responseSerialize: encode(res),
      responseDeserialize: decode(res),
    },
  } as ServiceDefinition;
}

/** Adds grpc.reflection.v1 and v1alpha ServerReflection to a grpc-js server. */
export function addReflection(server: Server, reflection: Reflection): void {
  const impl: UntypedServiceImplementation = {
    ServerReflectionInfo: (call: ServerDuplexStream<ReflectionRequest, ReflectionResponse>) => {
      call.on('data', (req: ReflectionRequest) => call.write(reflection.answer(req)));
      call.on('end', () => call.end());
      // A cancelled or failed stream has nothing to clean up.
      call.on('error', () => undefined);
    },
  };
  for (const name of REFLECTION_SERVICES) server.addService(definition(name), impl);
}
