// Runs one operation through the graphql-sse client (distinct connections mode) and prints what it gets,
// one JSON object a line: {"result": ...} per result, then {"done": true}, or {"error": ..., "status": ...}.
// Usage: node subscribe.cjs URL HEADERS_JSON QUERY VARIABLES_JSON RESULTS_WANTED
// After RESULTS_WANTED results the client stops the operation itself, as a page that unsubscribes does.
const { createClient } = require('graphql-sse');

const [url, headers, query, variables, wanted] = process.argv.slice(2);
const client = createClient({ url, headers: JSON.parse(headers), retryAttempts: 0 });

(async () => {
  let seen = 0;
  try {
    for await (const result of client.iterate({ query, variables: JSON.parse(variables) })) {
      console.log(JSON.stringify({ result }));
      if (++seen >= Number(wanted)) break;
    }
    console.log(JSON.stringify({ done: true }));
  } catch (err) {
    const status = err && err.response ? err.response.status : null;
    console.log(JSON.stringify({ error: String(err && err.message), status }));
  } finally {
    await client.dispose();
  }
})();
