import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import busboy from 'busboy';

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

export interface MultipartView {
  fields: Record<string, string>;
  files: { field: string; filename: string; data: Buffer }[];
}

/** Fields and files of a multipart body already in memory (it is forwarded as is). */
export function parseMultipart(bytes: Buffer, contentType: string | undefined): Promise<MultipartView | null> {
  return new Promise((resolve) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: { 'content-type': contentType ?? '' } });
    } catch {
      resolve(null);
      return;
    }
    const view: MultipartView = { fields: {}, files: [] };
    bb.on('field', (name, value) => {
      view.fields[name] = value;
    });
    bb.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => view.files.push({ field, filename: info.filename ?? '', data: Buffer.concat(chunks) }));
    });
    bb.once('close', () => resolve(view));
    bb.once('error', () => resolve(null));
    Readable.from([bytes]).pipe(bb);
  });
}
