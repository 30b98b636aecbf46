import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InfraError } from './errors.js';
import { endpointsOf, endpointsToEnv, loadProfile, repoRoot } from './profile.js';

/** The operator tools the README names, run from the repository root with no registry lookup (`npm run yugong -- …`). */
export const TOOLS = {
  yugong: 'proxy/dist/src/cli.js',
  reconcile: 'ledger-consumer/dist/src/reconcile-cli.js',
  rebuild: 'ledger-consumer/dist/src/rebuild-cli.js',
} as const;

export type ToolName = keyof typeof TOOLS;

export function isTool(name: string | undefined): name is ToolName {
  return name !== undefined && Object.hasOwn(TOOLS, name);
}

/**
 * The environment a tool runs with: what the caller set, and for anything unset the local
 * stack's (`npm start`'s) addresses and its admin token, so the README's commands work as
 * written right after `npm start`. A self-service key (YUGONG_API_KEY) is never paired with
 * the operator's token.
 */
export function toolEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const dev = loadProfile('dev', env);
  const filled: Record<string, string> = { ...endpointsToEnv(endpointsOf(dev)), YUGONG_URL: `http://127.0.0.1:${env.YUGONG_PROXY_PORT || 18080}` };
  const secrets = join(dev.dir, 'secrets.json');
  if (!env.YUGONG_API_KEY && existsSync(secrets)) filled.YUGONG_ADMIN_TOKEN = (JSON.parse(readFileSync(secrets, 'utf8')) as { adminToken: string }).adminToken;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  for (const [k, v] of Object.entries(filled)) if (!out[k]) out[k] = v;
  return out;
}

/** Runs a tool with its arguments; resolves with its exit code. */
export function runTool(name: ToolName, args: string[]): Promise<number> {
  const script = join(repoRoot, TOOLS[name]);
  if (!existsSync(script)) throw new InfraError('NOT_BUILT', `${TOOLS[name]} is missing: run npm run build (or npm start) first`);
  const child = spawn(process.execPath, [script, ...args], { cwd: repoRoot, env: toolEnv(), stdio: 'inherit' });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}
