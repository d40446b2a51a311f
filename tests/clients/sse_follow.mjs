// Follows one GraphQL subscription over graphql-sse (distinct connections mode) with the
// npm graphql-sse client, as a browser or Node.js frontend would, and prints each result
// as one JSON line. It stops after the first result whose data has a __typename listed in
// STOP_AT (comma-separated), or when the server completes the stream.
//
//   node sse_follow.mjs <url> <token|-> <query> <variables JSON> [STOP_AT]
import { createClient } from "graphql-sse";

const [url, token, query, variables, stopAt = ""] = process.argv.slice(2);
const stops = new Set(stopAt.split(",").filter(Boolean));
const client = createClient({
  url,
  headers: token === "-" ? {} : { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
});

const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");
try {
  const results = client.iterate({ query, variables: JSON.parse(variables) });
  for await (const result of results) {
    print({ result });
    const typename = result?.data && Object.values(result.data)[0]?.__typename;
    if (stops.has(typename)) break; // leaving the loop aborts the request
  }
  print({ done: true });
} catch (error) {
  print({ error: String(error?.message ?? error) });
} finally {
  client.dispose();
}
