import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';

/** Where the build puts the pages: dist/web, beside dist/src. */
const webDir = fileURLToPath(new URL('../web/', import.meta.url));

/**
 * The balance page (/) and the sub-account console (/console): static files that call the
 * public APIs with the visitor's key. The policy lets them talk only to this origin and to
 * the proxy, so an injected script could not send a key anywhere else.
 */
export function serveWebPages(app: Express, proxyUrl: string): void {
  const proxyOrigin = new URL(proxyUrl).origin;
  const headers = {
    'content-security-policy': `default-src 'self'; connect-src 'self' ${proxyOrigin}; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'`,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  app.get('/web-config.json', (_req, res) => {
    res.set({ ...headers, 'cache-control': 'no-store' }).json({ proxyUrl });
  });
  if (!existsSync(webDir)) return;
  app.use('/assets', express.static(`${webDir}assets`, { immutable: true, maxAge: '365d' }));
  app.use(
    express.static(webDir, {
      extensions: ['html'],
      setHeaders: (res) => {
        for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
        res.setHeader('cache-control', 'no-cache');
      },
    }),
  );
}
