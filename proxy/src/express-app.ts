import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { expressFallbacks } from './errors.js';

/**
 * The express app of either role (a node's own routes, the control plane): the same body
 * limit, liveness probe and OpenAI-shaped refusals, so a client sees one gateway whichever
 * process answers. `mount` adds the role's routes before the fallbacks.
 */
export function createExpressApp(publicUrl: string, log: Logger, mount: (app: Express) => void): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  mount(app);
  expressFallbacks(app, publicUrl, log);
  return app;
}
