// Hive Gateway serving the composed supergraph (see mesh.config.ts) as the peer in bench/.
import { defineConfig } from '@graphql-hive/gateway';

export const gatewayConfig = defineConfig({
  // Written per run by `mesh-compose`, since the simulators' address changes from run to run.
  supergraph: process.env.PEER_SUPERGRAPH ?? './supergraph.graphql',
  // What a benchmark measures is the query path, not the logs or the browser page.
  logging: 'error',
  graphiql: false,
  landingPage: false,
  // Its own response cache, for the scenarios it serves (herd, distinct cold ids), asked for per request
  // (the other scenarios measure the peer without it). Upstream requests in flight are deduplicated by
  // default in Hive Gateway's HTTP transport.
  responseCaching: {
    session: () => null,
    ttl: Number(process.env.PEER_RESPONSE_CACHE_TTL_MS ?? 1000),
    enabled: (request) => request.headers.get('x-bench-response-cache') === 'on',
  },
});
