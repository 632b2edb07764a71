/** CLI exit codes, documented in `meshwire --help` and the README. */
import { isMeshwireError } from '../common';

export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  UNAVAILABLE: 3,
  DEADLINE: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 6,
  DENIED: 7,
} as const;

/** gRPC status numbers (kept here so this module does not load grpc-js). */
const GRPC = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export function exitCodeFor(err: unknown): number {
  if (isMeshwireError(err)) {
    switch (err.code) {
      case 'INVALID_ARGUMENT':
        return EXIT.USAGE;
      case 'UNAVAILABLE':
        return EXIT.UNAVAILABLE;
      case 'DEADLINE_EXCEEDED':
        return EXIT.DEADLINE;
      case 'NOT_FOUND':
        return EXIT.NOT_FOUND;
      case 'RESOURCE_EXHAUSTED':
        return EXIT.RESOURCE_EXHAUSTED;
      case 'UNAUTHENTICATED':
      case 'PERMISSION_DENIED':
        return EXIT.DENIED;
      default:
        return EXIT.ERROR;
    }
  }
  const code = (err as { code?: unknown })?.code;
  switch (code) {
    case GRPC.INVALID_ARGUMENT:
      return EXIT.USAGE;
    case GRPC.UNAVAILABLE:
      return EXIT.UNAVAILABLE;
    case GRPC.DEADLINE_EXCEEDED:
      return EXIT.DEADLINE;
    case GRPC.NOT_FOUND:
      return EXIT.NOT_FOUND;
    case GRPC.RESOURCE_EXHAUSTED:
      return EXIT.RESOURCE_EXHAUSTED;
    case GRPC.UNAUTHENTICATED:
    case GRPC.PERMISSION_DENIED:
      return EXIT.DENIED;
    default:
      return EXIT.ERROR;
  }
}
