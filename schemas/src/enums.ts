/**
 * The closed sets events are made of. This module imports nothing, so the event schemas and the
 * usage events' fast check both read them without importing each other.
 */
export const SCHEMA_VERSION = 1 as const;

export const endpoints = [
  'chat.completions',
  'completions',
  'embeddings',
  'images.generations',
  'images.edits',
  'images.variations',
  'audio.transcriptions',
  'audio.translations',
  'audio.speech',
  'moderations',
  'responses',
  'models',
  'passthrough',
] as const;
export type Endpoint = (typeof endpoints)[number];

export const requestStatuses = ['ok', 'upstream_error', 'client_abort', 'rejected'] as const;
export type RequestStatus = (typeof requestStatuses)[number];

export const usageSources = ['upstream', 'estimated', 'none'] as const;
