#!/usr/bin/env node
import { runProcess } from '../process.js';
import { startControlNode } from '../wiring.js';

/** The control plane alone: the admin and self-service APIs, for deployments that run the proxy nodes with YUGONG_CONTROL_API=off. */
await runProcess('control', async (config, log) => {
  const plane = await startControlNode(config, log);
  log.info({ admin: `${plane.url}/admin/v1`, self_service: `${plane.url}/account/v1`, node: config.nodeId }, 'control plane listening');
  return plane;
});
