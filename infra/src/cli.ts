#!/usr/bin/env node
import { InfraError } from './errors.js';
import { loadProfile, type ProfileName } from './profile.js';
import { runAllTests } from './run-tests.js';
import { down, status, up } from './stack.js';
import { ensureInstalled } from './system.js';
import { isTool, runTool, TOOLS } from './tools.js';

const usage = `usage: yugong-infra <command> [dev|test]
  install        install what is missing (Debian packages, Java, Kafka jars); idempotent
  up [profile]   start Kafka, Redis and ClickHouse and wait until healthy (default: dev)
  down [profile] stop exactly the processes this profile started
  status [profile]
  test           run every test suite against a fresh test stack
  start          the whole Yugong stack on the dev profile, until Ctrl-C
  start cluster  the same on a Redis Cluster and 3 Kafka brokers, with two proxies and two ledgers
  tool NAME …    an operator tool (yugong, reconcile, rebuild) with the local stack's addresses and admin token filled in`;

function profileArg(arg: string | undefined): ProfileName {
  if (arg === undefined || arg === 'dev') return 'dev';
  if (arg === 'test') return 'test';
  throw new InfraError('BAD_CONFIG', `unknown profile "${arg}" (dev or test)\n${usage}`);
}

async function main(argv: string[]): Promise<number> {
  const [command, arg, ...rest] = argv;
  switch (command) {
    case 'install': {
      const installed = ensureInstalled(loadProfile('dev').home);
      console.log(`[infra] installed: redis-server, clickhouse-server, java (${installed.java}), kafka jars (${installed.kafkaLibs})`);
      return 0;
    }
    case 'up':
      await up(loadProfile(profileArg(arg)));
      return 0;
    case 'down': {
      const stopped = await down(loadProfile(profileArg(arg)));
      console.log(stopped.length ? `[infra] stopped: ${stopped.join(', ')}` : '[infra] nothing was running');
      return 0;
    }
    case 'status': {
      for (const s of status(loadProfile(profileArg(arg)))) {
        console.log(`${s.name.padEnd(11)} ${s.running ? `running (pid ${s.pid})` : 'stopped'.padEnd(18)} ${s.address.padEnd(28)} ${s.log}`);
      }
      return 0;
    }
    case 'test':
      return runAllTests([arg, ...rest].filter((a): a is string => a !== undefined));
    case 'tool':
      if (!isTool(arg)) throw new InfraError('BAD_CONFIG', `unknown tool "${arg ?? ''}" (${Object.keys(TOOLS).join(', ')})\n${usage}`);
      return runTool(arg, rest);
    case 'start': {
      if (arg !== undefined && arg !== 'cluster') throw new InfraError('BAD_CONFIG', `unknown start mode "${arg}" (nothing, or cluster)\n${usage}`);
      const { startWholeStack } = await import('./start-stack.js');
      return startWholeStack({ cluster: arg === 'cluster' });
    }
    default:
      console.error(usage);
      return command === undefined || command === 'help' ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof InfraError) {
      console.error(`\n[infra] ${err.code}: ${err.message}`);
      process.exit(1);
    }
    console.error(err);
    process.exit(1);
  },
);
