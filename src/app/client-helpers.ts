/** What a gRPC client of a node needs (the CLI's client commands, library users). */
export { createClients, clientSecurity, MESSAGING_PROTO, protoDir } from '../api';
