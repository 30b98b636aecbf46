export { createAnalyticsApp, overview } from './app.js';
export { loadConfig, type AnalyticsConfig } from './config.js';
export { parseDay, parseRange, parseAccount } from './params.js';
