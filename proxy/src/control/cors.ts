import type { NextFunction, Request, Response } from 'express';

/**
 * Cross-origin access for APIs authorized by a bearer credential that a page holds itself
 * (no cookies, so no request can ride on a visitor's session): any origin may ask, and the
 * credential decides. Answers preflights here.
 */
export function bearerCors(req: Request, res: Response, next: NextFunction): void {
  const origin = req.headers.origin;
  if (origin) res.set({ 'access-control-allow-origin': origin, vary: 'origin' });
  if (req.method !== 'OPTIONS') return next();
  res.set({
    'access-control-allow-methods': 'GET, POST, PATCH, DELETE, OPTIONS',
    'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? 'authorization, content-type'),
    'access-control-max-age': '600',
  });
  res.status(204).end();
}
