/**
 * Failed authentications per client address, in fixed one-minute windows. Guessing keys
 * is pointless at 192 bits, but this keeps scanners from costing us Redis lookups.
 */
export class FailedAuthLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(private readonly maxPerMinute = 30) {}

  /** Seconds until the address may try again, or 0 when it may now. */
  blockedFor(ip: string, now = Date.now()): number {
    const w = this.windows.get(ip);
    if (!w || now - w.start >= 60_000 || w.count < this.maxPerMinute) return 0;
    return Math.ceil((w.start + 60_000 - now) / 1000);
  }

  fail(ip: string, now = Date.now()): void {
    const w = this.windows.get(ip);
    if (!w || now - w.start >= 60_000) this.windows.set(ip, { start: now, count: 1 });
    else w.count++;
    if (this.windows.size > 100_000) this.sweep(now);
  }

  private sweep(now: number): void {
    for (const [ip, w] of this.windows) if (now - w.start >= 60_000) this.windows.delete(ip);
  }
}
