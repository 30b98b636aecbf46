export { createProxy, type Proxy, type ProxyDeps } from './app.js';
export { loadConfig, type ProxyConfig, type UpstreamSeed } from './config.js';
export { AccountsService, newApiKey } from './control/service.js';
export { createControlPlane, type ControlPlane } from './control/plane.js';
export { UpstreamPool, parseResetDuration, retryAfterMs } from './pool/pool.js';
export { encryptSecret, decryptSecret, upstreamKeyId } from './pool/crypto.js';
export { classify } from './upstream/forward.js';
export { modelAllowed } from '@yugong/schemas';
export { createMetrics as createProxyMetrics } from './metrics.js';
