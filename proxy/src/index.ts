export { createProxy, type Proxy, type ProxyDeps } from './app.js';
export { loadConfig, type ProxyConfig, type UpstreamSeed } from './config.js';
export { AccountsService, newApiKey, upstreamKeyId } from './admin/service.js';
export { UpstreamPool, parseResetDuration, retryAfterMs } from './pool/pool.js';
export { encryptSecret, decryptSecret } from './pool/crypto.js';
export { classify } from './upstream/forward.js';
export { SseMeter } from './metering/sse.js';
export { readUsage, usageFromTail } from './metering/usage.js';
export { ipAllowed, modelAllowed } from './http/limits.js';
