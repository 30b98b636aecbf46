import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './profile.js';

/** A Markdown table from a header and rows. */
export function markdownTable(header: string[], rows: (string | number)[][]): string {
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** "2026-11-22, AMD EPYC …, 2 cores, Node v20…": the date and machine a result belongs to. */
export function machineLine(): string {
  return `${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
}

/**
 * Replaces the section headed `title` in docs/benchmarks.md (up to the next level-2 heading),
 * or appends it, and returns the file's path.
 */
export function writeBenchmarkSection(title: string, body: string): string {
  const file = join(repoRoot, 'docs', 'benchmarks.md');
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\nNumbers from scripts, not tests. Each section is replaced when its script runs again.\n';
  const marker = `## ${title}`;
  const section = `${marker}\n\n${body.trim()}\n`;
  const at = existing.indexOf(marker);
  const next = at >= 0 ? existing.indexOf('\n## ', at + marker.length) : -1;
  const updated = at >= 0 ? existing.slice(0, at) + section + (next >= 0 ? existing.slice(next) : '') : `${existing.trimEnd()}\n\n${section}`;
  writeFileSync(file, updated);
  return file;
}
