import type { Express } from 'express';
import type { Authenticator } from '@yugong/schemas';
import { adminRouter, type ControlHooks } from './admin-router.js';
import type { AccountsService } from './service.js';
import { selfServiceRouter } from './self-service-router.js';

export interface ControlApiDeps {
  service: AccountsService;
  auth: Authenticator;
  adminToken: string;
  hooks: ControlHooks;
  /** Upstream base URLs on loopback, private or link-local addresses are refused unless this is set. */
  allowPrivateUpstreams: boolean;
}

/** The write APIs: the operator's under /admin/v1, an account's own under /account/v1. */
export function mountControlApi(app: Express, deps: ControlApiDeps): void {
  app.use('/admin/v1', adminRouter(deps.service, deps.adminToken, deps.hooks, deps.allowPrivateUpstreams));
  app.use('/account/v1', selfServiceRouter(deps.service, deps.auth));
}
