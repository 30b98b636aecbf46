export * from './errors.js';
export * from './profile.js';
export * from './system.js';
export * from './stack.js';
export * from './test-stack.js';
export { portIsFree } from './net.js';
export { startDetached, stopByPidFile, isOurs, readPid, tail } from './proc.js';
export type { ServiceDef } from './services/service.js';
export { READONLY_USER } from './services/clickhouse.js';
