import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../src/profile.js';
import { realSystem } from '../../src/system.js';

/** `docker compose` (the plugin) where present, else Debian's docker-compose; neither needs an engine for `config`. */
function composeCommand(): string[] | null {
  if (realSystem.which('docker') && spawnSync('docker', ['compose', 'version']).status === 0) return ['docker', 'compose'];
  if (realSystem.which('docker-compose')) return ['docker-compose'];
  return null;
}

describe('deployment files', function () {
  // Debian's docker-compose is a Python program: its first run on a fresh machine compiles its modules.
  this.timeout(30_000);
  const file = join(repoRoot, 'infra', 'deploy', 'docker-compose.yml');
  const env = { ...process.env, YUGONG_ADMIN_TOKEN: 'x'.repeat(32), YUGONG_SECRET_KEY: 'ab'.repeat(32) };

  it('the compose file is valid', () => {
    const cmd = composeCommand();
    assert.ok(cmd, "no compose tool: `npm test` installs Debian's docker-compose; install it or the docker compose plugin");
    const [bin, ...pre] = cmd;
    const r = spawnSync(bin ?? 'docker-compose', [...pre, '-f', file, 'config', '-q'], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const services = spawnSync(bin ?? 'docker-compose', [...pre, '-f', file, 'config', '--services'], { env, encoding: 'utf8' });
    for (const s of ['kafka', 'redis', 'clickhouse', 'proxy', 'ledger-consumer', 'analytics', 'grafana']) assert.match(services.stdout, new RegExp(`^${s}$`, 'm'));
  });

  it("the image installs every workspace: each one's package.json is copied before npm ci", () => {
    const dockerfile = readFileSync(join(repoRoot, 'infra', 'deploy', 'Dockerfile'), 'utf8');
    const workspaces = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    const beforeInstall = dockerfile.slice(0, dockerfile.indexOf('RUN npm ci'));
    for (const ws of workspaces) assert.ok(beforeInstall.includes(`COPY ${ws}/package.json ${ws}/`), `the Dockerfile copies ${ws}/package.json`);
  });

  it('refuses to run without the required secrets', () => {
    const cmd = composeCommand();
    assert.ok(cmd);
    const [bin, ...pre] = cmd;
    const r = spawnSync(bin ?? 'docker-compose', [...pre, '-f', file, 'config', '-q'], { env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /YUGONG_ADMIN_TOKEN/);
  });
});

describe('Kubernetes manifests', () => {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'infra', 'deploy', 'k8s', 'yugong.yaml'), 'utf8')).map((d) => d.toJS() as any);

  it('parse, and every service restarts on failure behind readiness and liveness probes on a declared port', () => {
    const deployments = docs.filter((d) => d.kind === 'Deployment');
    assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ['yugong-analytics', 'yugong-ledger', 'yugong-proxy']);
    for (const d of deployments) {
      assert.equal(d.apiVersion, 'apps/v1');
      assert.deepEqual(d.spec.selector.matchLabels, d.spec.template.metadata.labels, `${d.metadata.name}: the selector matches its pods`);
      const pod = d.spec.template.spec;
      assert.equal(pod.restartPolicy, 'Always');
      for (const c of pod.containers) {
        const ports = new Set(c.ports.map((p: { name: string }) => p.name));
        for (const probe of ['readinessProbe', 'livenessProbe']) {
          assert.ok(c[probe]?.httpGet?.path, `${d.metadata.name}: ${probe}`);
          assert.ok(ports.has(c[probe].httpGet.port), `${d.metadata.name}: ${probe} on a declared port`);
        }
        const env = Object.fromEntries((c.env ?? []).map((e: { name: string; value: string }) => [e.name, e.value]));
        assert.ok(
          c.envFrom.some((e: any) => e.secretRef?.name === 'yugong'),
          `${d.metadata.name}: secrets from the Secret`,
        );
        if (d.metadata.name === 'yugong-proxy') {
          assert.ok(Number(env.YUGONG_SHUTDOWN_GRACE_MS) / 1000 < pod.terminationGracePeriodSeconds, 'the drain fits in the termination grace period');
          assert.equal(c.readinessProbe.httpGet.path, '/readyz');
        }
      }
    }
    const config = docs.find((d) => d.kind === 'ConfigMap');
    assert.ok(config.data.YUGONG_TRUSTED_PROXIES, 'the proxies behind the ingress know whom to believe');
    assert.match(config.data.YUGONG_REDIS_URL, /^rediss?\+cluster:\/\/[^,\s]+(,[^,\s]+)+$/, 'a Redis Cluster named by its seeds');
    assert.deepEqual([config.data.YUGONG_REDIS_REPLICAS, config.data.YUGONG_KAFKA_REPLICATION_FACTOR], ['1', '3'], 'replicated writes on the clustered engines');
  });
});
