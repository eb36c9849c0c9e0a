// Sends one operation as Apollo Client does for @defer (Accept: multipart/mixed;deferSpec=20220824) and reads
// the answer with meros, the multipart reader of Hive's, urql's and Relay's fetchers. Prints one JSON
// object a line: {"part": ...} per part, or {"single": ...} when the answer was one document.
// Usage: node defer.cjs URL HEADERS_JSON QUERY VARIABLES_JSON
const { meros } = require('meros/browser');

const [url, headers, query, variables] = process.argv.slice(2);

(async () => {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      ...JSON.parse(headers),
      'content-type': 'application/json',
      accept: 'multipart/mixed;deferSpec=20220824, application/json',
    },
    body: JSON.stringify({ query, variables: JSON.parse(variables) }),
  });
  const parts = await meros(response);
  if (!(Symbol.asyncIterator in Object(parts))) {
    console.log(JSON.stringify({ single: await parts.json() }));
    return;
  }
  for await (const part of parts) {
    console.log(JSON.stringify({ part: part.json ? part.body : String(part.body) }));
  }
})().catch((err) => {
  console.log(JSON.stringify({ error: String(err && err.message) }));
  process.exitCode = 1;
});
