import { countTokens } from '../tokens.js';
import { badRequest, type Ctx, type Route } from '../context.js';
import { replyPieces } from '../text.js';
import { cutConnection, sendJson, sleep, write } from '../wire.js';
import { audioDuration } from '@yugong/metering';

function transcript(ctx: Ctx): string {
  return ctx.behaviour.reply ?? replyPieces({}).pieces.join('');
}

function srt(text: string, seconds: number): string {
  const end = new Date(seconds * 1000).toISOString().slice(11, 23).replace('.', ',');
  return `1\n00:00:00,000 --> ${end}\n${text}\n\n`;
}

function audioRoute(path: RegExp, task: 'transcribe' | 'translate'): Route {
  return {
    method: 'POST',
    path,
    body: 'multipart',
    needsModel: true,
    estimateTokens: () => 0,
    handle(ctx) {
      const file = ctx.multipart.files.find((f) => f.field === 'file');
      if (!file) return badRequest(ctx, 'file', "Missing required parameter: 'file'.");
      if (task === 'translate' && ctx.model !== 'whisper-1') return badRequest(ctx, 'model', 'Translations are only supported by whisper-1.');
      const seconds = audioDuration(file.data).ms / 1000;
      const text = transcript(ctx);
      const format = ctx.multipart.fields.response_format ?? 'json';
      const tokenBilled = ctx.model !== 'whisper-1';
      const audioTokens = Math.max(1, Math.round(seconds * 10));
      const outputTokens = countTokens(ctx.model, text);
      const usage = tokenBilled
        ? { type: 'tokens', input_tokens: audioTokens, input_token_details: { text_tokens: 0, audio_tokens: audioTokens }, output_tokens: outputTokens, total_tokens: audioTokens + outputTokens }
        : { type: 'duration', seconds: Math.ceil(seconds) };
      if (format === 'text' || format === 'srt' || format === 'vtt') {
        const body = format === 'text' ? `${text}\n` : format === 'srt' ? srt(text, seconds) : `WEBVTT\n\n${srt(text, seconds).split('\n').slice(1).join('\n').replace(',', '.')}`;
        ctx.res.writeHead(200, { ...ctx.headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        ctx.res.end(body);
        return;
      }
      if (format === 'verbose_json') {
        sendJson(
          ctx.res,
          200,
          {
            task,
            language: 'english',
            duration: seconds,
            text,
            segments: [{ id: 0, seek: 0, start: 0, end: seconds, text, tokens: [], temperature: 0, avg_logprob: -0.2, compression_ratio: 1.2, no_speech_prob: 0.01 }],
            ...(task === 'transcribe' ? { usage } : {}),
          },
          ctx.headers,
        );
        return;
      }
      sendJson(ctx.res, 200, task === 'transcribe' ? { text, usage } : { text }, ctx.headers);
    },
  };
}

export const transcriptionsRoute = audioRoute(/^\/v1\/audio\/transcriptions$/, 'transcribe');
export const translationsRoute = audioRoute(/^\/v1\/audio\/translations$/, 'translate');

const SPEECH_TYPES: Record<string, string> = { mp3: 'audio/mpeg', opus: 'audio/opus', aac: 'audio/aac', flac: 'audio/flac', wav: 'audio/wav', pcm: 'audio/pcm' };

export const speechRoute: Route = {
  method: 'POST',
  path: /^\/v1\/audio\/speech$/,
  body: 'json',
  needsModel: true,
  estimateTokens: () => 0,
  async handle(ctx) {
    const input = ctx.json.input;
    if (typeof input !== 'string' || input.length === 0) return badRequest(ctx, 'input', "Missing required parameter: 'input'.");
    if (input.length > 4096) return badRequest(ctx, 'input', `String too long. Expected a string with maximum length 4096, but got a string with length ${input.length} instead.`);
    if (typeof ctx.json.voice !== 'string') return badRequest(ctx, 'voice', "Missing required parameter: 'voice'.");
    const format = typeof ctx.json.response_format === 'string' ? ctx.json.response_format : 'mp3';
    const type = SPEECH_TYPES[format];
    if (!type) return badRequest(ctx, 'response_format', `Invalid value: '${format}'. Supported values are: 'mp3', 'opus', 'aac', 'flac', 'wav', and 'pcm'.`);
    // Roughly what 128 kbit/s speech of this text weighs, streamed in 4 KiB pieces as it is "spoken".
    const total = Math.max(4096, input.length * 400);
    ctx.res.writeHead(200, { ...ctx.headers, 'content-type': type, 'transfer-encoding': 'chunked' });
    const piece = Buffer.alloc(4096, 0x55);
    piece.set([0xff, 0xfb, 0x90, 0x64], 0);
    let sent = 0;
    for (let i = 0; sent < total; i++) {
      if (ctx.behaviour.cutStreamAfterChunks !== undefined && i >= ctx.behaviour.cutStreamAfterChunks) {
        cutConnection(ctx.res);
        return;
      }
      if (i > 0) await sleep(ctx.behaviour.tokenDelayMs ?? 0);
      const chunk = piece.subarray(0, Math.min(piece.length, total - sent));
      if (!(await write(ctx.res, chunk))) return;
      sent += chunk.length;
    }
    ctx.res.end();
  },
};
