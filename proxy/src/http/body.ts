import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import type { MultipartView } from '../endpoints/endpoint.js';

export type BodyResult = { ok: true; bytes: Buffer } | { ok: false; reason: 'too_large' | 'aborted' };

/**
 * Reads the whole request body up to `limit` bytes; refuses by Content-Length first.
 * Listens to the stream's events rather than iterating it: an async iterator costs several
 * promises per request on the hot path.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve({ ok: false, reason: 'too_large' });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (result: BodyResult) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      done({ ok: false, reason: 'too_large' });
      req.resume();
    };
    const onEnd = () => done({ ok: true, bytes: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) });
    const onAbort = () => done({ ok: false, reason: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}

export type MultipartProblem = 'not_multipart' | 'malformed' | 'too_many_parts' | 'field_too_large';
export type MultipartResult = { ok: true; view: MultipartView } | { ok: false; problem: MultipartProblem; detail: string };

/** OpenAI's multipart endpoints take a few files and a dozen fields; more is not a real client. */
const MULTIPART_LIMITS = { files: 16, fields: 64, parts: 96, fieldSize: 1024 * 1024, fieldNameSize: 200 };

/**
 * Fields and files of a multipart body already in memory (it is forwarded as is). Every
 * emitter busboy creates gets an error listener: a truncated body ends the part's stream with
 * an error, and an unheard one would end the process.
 */
export function parseMultipart(bytes: Buffer, contentType: string | undefined): Promise<MultipartResult> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (r: MultipartResult) => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const refuse = (problem: MultipartProblem, detail: string) => settle({ ok: false, problem, detail });
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: { 'content-type': contentType ?? '' }, limits: MULTIPART_LIMITS });
    } catch (err) {
      refuse('not_multipart', (err as Error).message);
      return;
    }
    const view: MultipartView = { fields: {}, files: [] };
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated || info.nameTruncated) return refuse('field_too_large', `The form field '${name.slice(0, 100)}' is larger than ${MULTIPART_LIMITS.fieldSize} bytes.`);
      view.fields[name] = value;
    });
    bb.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('error', (err: Error) => refuse('malformed', err.message));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => view.files.push({ field, filename: info.filename ?? '', data: Buffer.concat(chunks) }));
    });
    for (const limit of ['partsLimit', 'filesLimit', 'fieldsLimit'] as const) {
      bb.on(limit, () => refuse('too_many_parts', `The form has more than ${MULTIPART_LIMITS.parts} parts, ${MULTIPART_LIMITS.files} files or ${MULTIPART_LIMITS.fields} fields.`));
    }
    bb.on('error', (err: Error) => refuse('malformed', err.message));
    bb.on('close', () => settle({ ok: true, view }));
    try {
      bb.end(bytes);
    } catch (err) {
      refuse('malformed', (err as Error).message);
    }
  });
}

/**
 * Whether JSON text nests objects and arrays deeper than `max`. Parsing accepts any depth,
 * but every walk and re-serialisation after it recurses: a body nested a hundred thousand
 * levels deep would overflow the stack there. One pass over the bytes, strings skipped.
 */
export function nestedDeeperThan(bytes: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
