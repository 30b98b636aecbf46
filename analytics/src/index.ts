export { createAnalyticsApp, type AnalyticsDeps } from './app.js';
export { loadConfig, type AnalyticsConfig } from './config.js';
export { parseDay, parseRange, parseAccount, parseCursor, encodeCursor } from './params.js';
export { csvLine } from './csv.js';
export { startAnalyticsService, type AnalyticsService } from './service.js';
