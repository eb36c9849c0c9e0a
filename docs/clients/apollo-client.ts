// The README's Apollo Client setup, type-checked by `make clients`.
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache, ServerError } from "@apollo/client";
import { ErrorLink } from "@apollo/client/link/error";
import { relayStylePagination } from "@apollo/client/utilities";
// `live-gateway possible-types --output generated/possibleTypes.json` (make clients does it)
import possibleTypes from "./generated/possibleTypes.json";

declare const token: string;
declare function signIn(): void;
declare function showNotAllowed(path: ReadonlyArray<string | number> | undefined): void;

const cache = new InMemoryCache({
  possibleTypes,
  typePolicies: {
    // one cached list per filter; `fetchMore({ variables: { after: pageInfo.endCursor } })` appends
    Query: { fields: { liveEvents: relayStylePagination(["filter"]) } },
  },
});

const errors = new ErrorLink(({ error }) => {
  // Missing, expired or bad credentials: HTTP 401 whose errors carry extensions.code UNAUTHENTICATED.
  if (CombinedGraphQLErrors.is(error)) {
    if (error.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) signIn();
    // A role that may not read a field: that field null, a FORBIDDEN error, and the rest of the data.
    for (const e of error.errors) if (e.extensions?.code === "FORBIDDEN") showNotAllowed(e.path);
  } else if (ServerError.is(error) && error.statusCode === 401) {
    signIn();
  }
});

export const client = new ApolloClient({
  cache,
  link: ApolloLink.from([errors, new HttpLink({ uri: "/graphql", headers: { Authorization: `Bearer ${token}` } })]),
});
