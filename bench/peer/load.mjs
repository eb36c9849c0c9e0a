// Closed-loop HTTP load with autocannon: `connections` clients, each sending its next request when the
// last one is answered, for `duration` seconds after a warm-up. Prints one JSON object on stdout.
//
// autocannon's own histogram keeps whole milliseconds; the per-response times it reports to listeners are
// kept here as well, so percentiles have sub-millisecond resolution (a warm read takes about a millisecond).
//
//   node load.mjs '{"url": "...", "method": "POST", "headers": {...}, "body": "...", "connections": 10,
//                   "duration": 10, "warmup": 2}'
import { createRequire } from 'node:module';
import autocannon from 'autocannon';

const { version } = createRequire(import.meta.url)('autocannon/package.json');

const spec = JSON.parse(process.argv[2]);

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

let sent = 0;
function nextBody() {
  const body = spec.bodies[sent % spec.bodies.length];
  sent += 1;
  return body;
}

function run(duration, record) {
  return new Promise((resolve, reject) => {
    const latencies = [];
    const instance = autocannon(
      {
        url: spec.url,
        method: spec.method ?? 'GET',
        headers: spec.headers ?? {},
        body: spec.body,
        // Several bodies (distinct ids): each request takes the next, in turn.
        requests: spec.bodies ? [{ setupRequest: (request) => ({ ...request, body: nextBody() }) }] : undefined,
        connections: spec.connections,
        duration,
        timeout: spec.timeout ?? 30,
      },
      (err, result) => (err ? reject(err) : resolve({ result, latencies })),
    );
    if (record) {
      instance.on('response', (_client, statusCode, _bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
      });
    }
  });
}

if (spec.warmup > 0) await run(spec.warmup, false);
const { result, latencies } = await run(spec.duration, true);
const sorted = Float64Array.from(latencies).sort();
const seconds = (new Date(result.finish) - new Date(result.start)) / 1000;
const sum = latencies.reduce((a, b) => a + b, 0);
const out = {
  tool: `autocannon ${version}`,
  connections: spec.connections,
  seconds,
  ok: latencies.length,
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  rps: latencies.length / seconds,
  latency_ms: {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: latencies.length ? sum / latencies.length : null,
    min: sorted.length ? sorted[0] : null,
    max: sorted.length ? sorted[sorted.length - 1] : null,
  },
  autocannon_latency_ms: {
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
  },
};
process.stdout.write(JSON.stringify(out) + '\n');
