#!/usr/bin/env node
import { runProcess } from '../process.js';
import { createControlPlane } from './plane.js';

/** The control plane alone: the admin and self-service APIs, for deployments that run the proxy nodes with YUGONG_CONTROL_API=off. */
await runProcess('control', async (deps) => {
  const plane = await createControlPlane(deps);
  const url = await plane.listen();
  deps.log.info({ admin: `${url}/admin/v1`, self_service: `${url}/account/v1`, node: deps.config.nodeId }, 'control plane listening');
  return plane;
});
