/**
 * The fake upstream in its own process for benchmarks, so that the load generator, the gateway and the
 * upstream do not share an event loop. Prints `READY <url>` when listening.
 */
import { startFakeUpstream } from '../test/fake-upstream.js';

const fake = await startFakeUpstream();
// Keep memory flat over long runs: the benchmark does not read what the fake received.
setInterval(() => fake.received.splice(0), 1000).unref();
console.log(`READY ${fake.url}`);
