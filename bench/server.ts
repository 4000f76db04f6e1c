/**
 * Fake upstreams in their own process for benchmarks, so that the load generator, the gateway and the upstream
 * do not share an event loop: `fake` (Anthropic) or `bedrock` (test/fake-bedrock.ts, verifying each SigV4
 * signature made with BENCH_AWS credentials). Prints `READY <url>` when listening.
 */
import { startFakeBedrock } from '../test/fake-bedrock.js';
import { startFakeUpstream } from '../test/fake-upstream.js';
import { BENCH_AWS } from './bench-aws.js';

if (process.argv[2] === 'bedrock') {
  const fake = await startFakeBedrock({ region: 'us-east-1', credentials: BENCH_AWS });
  setInterval(() => fake.received.splice(0), 1000).unref();
  console.log(`READY ${fake.url}`);
} else if (process.argv[2] === 'fake') {
  const fake = await startFakeUpstream();
  // Keep memory flat over long runs: the benchmark does not read what the fake received.
  setInterval(() => fake.received.splice(0), 1000).unref();
  console.log(`READY ${fake.url}`);
}
