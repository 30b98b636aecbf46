import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../src/profile.js';
import { realSystem } from '../../src/system.js';

/** `docker compose` (the plugin) where present, else Debian's docker-compose; neither needs an engine for `config`. */
function composeCommand(): string[] | null {
  if (realSystem.which('docker') && spawnSync('docker', ['compose', 'version']).status === 0) return ['docker', 'compose'];
  if (realSystem.which('docker-compose')) return ['docker-compose'];
  return null;
}

describe('deployment files', () => {
  const file = join(repoRoot, 'infra', 'deploy', 'docker-compose.yml');
  const env = { ...process.env, YUGONG_ADMIN_TOKEN: 'x'.repeat(32), YUGONG_SECRET_KEY: 'ab'.repeat(32) };

  it('the compose file is valid', function () {
    const cmd = composeCommand();
    assert.ok(cmd, 'no compose tool: `npm test` installs Debian\'s docker-compose; install it or the docker compose plugin');
    const [bin, ...pre] = cmd;
    const r = spawnSync(bin ?? 'docker-compose', [...pre, '-f', file, 'config', '-q'], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const services = spawnSync(bin ?? 'docker-compose', [...pre, '-f', file, 'config', '--services'], { env, encoding: 'utf8' });
    for (const s of ['kafka', 'redis', 'clickhouse', 'proxy', 'ledger-consumer', 'analytics', 'grafana']) assert.match(services.stdout, new RegExp(`^${s}$`, 'm'));
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
