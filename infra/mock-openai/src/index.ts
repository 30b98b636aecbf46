export { createMockOpenAI, routes, type MockOpenAI, type MockOptions, type RecordedRequest } from './server.js';
export { MockState, DEFAULT_RPM, DEFAULT_TPM, formatDuration, type KeyBehaviour, type Failure, type FailureKind } from './behaviour.js';
export { MODELS, modelExists } from './routes/models.js';
export { TINY_PNG_BASE64 } from './routes/images.js';
