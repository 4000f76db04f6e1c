/** The AWS credentials the benchmark's fake Bedrock verifies and the gateway under test signs with (loopback only). */
export const BENCH_AWS = { accessKeyId: 'AKIDSWITCHYARDBENCH1', secretAccessKey: 'bench-secret-access-key' };
