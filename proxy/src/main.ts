#!/usr/bin/env node
import { runProcess } from './process.js';
import { startProxyNode } from './wiring.js';

/** The data plane: a proxy node (and, unless YUGONG_CONTROL_API=off, the control plane's APIs with it). */
await runProcess('proxy', async (config, log) => {
  const node = await startProxyNode(config, log);
  log.info({ url: `${node.url}/v1`, node: config.nodeId, upstream_keys: node.role.pool.all().length, control_api: config.controlApi }, 'proxy listening');
  return { close: node.close, onRejection: () => node.role.metrics.unhandledRejections.inc() };
});
