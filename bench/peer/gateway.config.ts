// Hive Gateway serving the composed supergraph (see mesh.config.ts) as the peer in bench/.
import { defineConfig } from '@graphql-hive/gateway';

export const gatewayConfig = defineConfig({
  // Written per run by `mesh-compose`, since the simulators' address changes from run to run.
  supergraph: process.env.PEER_SUPERGRAPH ?? './supergraph.graphql',
  // What a benchmark measures is the query path, not the logs or the browser page.
  logging: 'error',
  graphiql: false,
  landingPage: false,
});
