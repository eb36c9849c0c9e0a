// Composes the peer's supergraph from the OpenAPI documents the vendor simulators serve for their own routes.
// PEER_SIM_URL is the simulators' address; PEER_SIM_TOKEN the one bearer token every simulated vendor accepts.
import { createPrefixTransform, defineConfig } from '@graphql-mesh/compose-cli';
import { loadOpenAPISubgraph } from '@omnigraph/openapi';

const simUrl = (process.env.PEER_SIM_URL ?? 'http://127.0.0.1:8081').replace(/\/$/, '');
const token = process.env.PEER_SIM_TOKEN ?? 'sim-token';

// Each vendor's name and its base URL on the simulators.
const vendors: Array<[string, string]> = [
  ['Loop', '/loop'],
  ['Streamloop', '/streamloop/v1'],
  ['Livepush', '/livepush'],
];

export const composeConfig = defineConfig({
  subgraphs: vendors.map(([name, prefix]) => ({
    sourceHandler: loadOpenAPISubgraph(name, {
      source: `${simUrl}${prefix}/openapi.json`,
      endpoint: `${simUrl}${prefix}`,
      operationHeaders: { Authorization: `Bearer ${token}` },
    }),
    // Streamloop and Livepush both call their resource a stream (createStream, getStream, Stream):
    // a prefix per vendor keeps the two apart in one supergraph.
    transforms: [createPrefixTransform({ value: `${name}_`, includeRootOperations: true })],
  })),
});
