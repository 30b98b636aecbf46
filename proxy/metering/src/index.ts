export * from './tokenizer.js';
export * from './audio.js';
export * from './sse.js';
export * from './usage.js';
