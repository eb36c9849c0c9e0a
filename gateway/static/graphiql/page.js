// GraphiQL as the gateway serves it: every file comes from the gateway, nothing from a CDN.
//
// What the server decides is in the page's JSON block #graphiql-config:
//   headers  the headers every tab starts with (the demo puts its token here), or {}
//   query    the query a new tab starts with
//   schemaUrl  where the schema's introspection result is read when introspection is turned off, or null
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("graphiql-config").textContent);
  const endpoint = new URL(window.location.href);
  endpoint.search = "";
  endpoint.hash = "";
  const httpUrl = endpoint.toString();
  endpoint.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  const wsUrl = endpoint.toString();

  const startHeaders = Object.keys(config.headers).length ? JSON.stringify(config.headers, null, 2) : "";

  // The headers as one canonical string, or null while the text is not a JSON object (mid-edit).
  function canonical(text) {
    if (!text || !text.trim()) return "{}";
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
      return JSON.stringify(Object.keys(value).sort().map((key) => [key, value[key]]));
    } catch (error) {
      return null;
    }
  }

  // Read from the text sent, not from GraphiQL's documentAST: that one follows the editor with a delay, and
  // a query run right after an edit would be sent as the one before it.
  function parsed(params, options) {
    try {
      return GraphiQL.GraphQL.parse(params.query);
    } catch (error) {
      return options && options.documentAST;
    }
  }

  function isSubscription(params, options) {
    const document = parsed(params, options);
    if (!document) return false;
    const operations = document.definitions.filter((d) => d.kind === "OperationDefinition");
    const chosen = params.operationName
      ? operations.find((d) => d.name && d.name.value === params.operationName)
      : operations.length === 1 ? operations[0] : undefined;
    return Boolean(chosen && chosen.operation === "subscription");
  }

  // Why the socket closed, in words: a refused connection_init (4403, 4401) would otherwise leave the tab
  // spinning with no message.
  function closeReason(event) {
    const reason = event.reason ? `: ${event.reason}` : "";
    return `the gateway closed the subscription's socket (${event.code}${reason})`;
  }

  // Each subscription gets a socket of its own, opened with the headers of the tab that runs it (sent in
  // connection_init: a browser cannot put headers on a websocket).
  function subscribe(params, headers) {
    return {
      subscribe(observer) {
        const client = graphqlWs.createClient({
          url: wsUrl,
          connectionParams: headers || {},
          lazy: true,
          retryAttempts: 0,
          shouldRetry: () => false,
        });
        const dispose = client.subscribe(
          { query: params.query, variables: params.variables, operationName: params.operationName },
          {
            next: (value) => observer.next(value),
            // Shown as the answer's errors, as the gateway's own errors are.
            error: (error) => {
              if (Array.isArray(error)) {
                observer.next({ errors: error });
              } else if (error && typeof error.code === "number") {
                observer.next({ errors: [{ message: closeReason(error) }] });
              } else {
                observer.next({ errors: [{ message: error instanceof Error ? error.message : String(error) }] });
              }
              observer.complete();
            },
            complete: () => observer.complete(),
          },
        );
        return {
          unsubscribe() {
            dispose();
            client.dispose();
          },
        };
      },
    };
  }

  // The schema, from the file the gateway serves where introspection is turned off; with the tab's headers.
  function readSchema(headers) {
    const url = new URL(config.schemaUrl, httpUrl).toString();
    return fetch(url, { headers: { ...(headers || {}), Accept: "application/json" } }).then((answer) => answer.json());
  }

  function makeFetcher() {
    const http = GraphiQL.createFetcher({ url: httpUrl });
    return function fetcher(params, options) {
      const headers = options && options.headers;
      if (config.schemaUrl && params.operationName === "IntrospectionQuery") return readSchema(headers);
      if (isSubscription(params, options)) return subscribe(params, headers);
      return http(params, options);
    };
  }

  function App() {
    // A new fetcher makes GraphiQL fetch the schema again: done whenever the headers change (after a
    // pause in typing), so the docs load once credentials are there.
    const [fetcher, setFetcher] = React.useState(makeFetcher);
    const lastHeaders = React.useRef(canonical(startHeaders));
    const pause = React.useRef(undefined);
    const onEditHeaders = React.useCallback((text) => {
      window.clearTimeout(pause.current);
      pause.current = window.setTimeout(() => {
        const headers = canonical(text);
        if (headers === null || headers === lastHeaders.current) return;
        lastHeaders.current = headers;
        setFetcher(makeFetcher);
      }, 400);
    }, []);
    const explorer = React.useMemo(() => GraphiQLPluginExplorer.explorerPlugin(), []);
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultQuery: config.query,
      defaultHeaders: startHeaders,
      headers: startHeaders || undefined,
      onEditHeaders: onEditHeaders,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: startHeaders ? "headers" : true,
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
})();
