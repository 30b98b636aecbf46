import { audioDuration, countTokens } from '@yugong/metering';
import type { Endpoint } from '@yugong/schemas';
import { emptyUsage, nothing, whenServed, type MeteredEndpoint } from './endpoint.js';
import { AUDIO_TOKENS_PER_SECOND, audioSecondsBound } from './media.js';

/** Whisper is priced by the minute of audio; the token-priced transcribers by audio tokens in and text out. */
function listening(name: Endpoint, suffix: string): MeteredEndpoint {
  return {
    name,
    method: 'POST',
    suffix,
    body: 'multipart',
    upload: 'file',
    streamable: false,
    hold({ multipart }) {
      const usage = emptyUsage();
      const t = usage.tokens;
      const file = multipart?.files.find((f) => f.field === 'file');
      const seconds = file ? audioSecondsBound(file.data) : 0;
      usage.audioMs = Math.ceil(seconds * 1000);
      // Text out: a few tokens a second.
      t.prompt = t.audioPrompt = Math.ceil(seconds * AUDIO_TOKENS_PER_SECOND) + Buffer.byteLength(multipart?.fields.prompt ?? '');
      t.completion = Math.ceil(seconds * 5);
      return { usage, tokens: t.prompt + t.completion, audioMs: file ? audioDuration(file.data).ms : 0 };
    },
    unreported: whenServed(({ hold }) => ({ usage: { ...nothing(hold), audioMs: hold.audioMs }, source: 'estimated' })),
  };
}

export const audioTranscriptions = listening('audio.transcriptions', '/audio/transcriptions');
export const audioTranslations = listening('audio.translations', '/audio/translations');

const speechInput = (json: Record<string, unknown>) => (typeof json.input === 'string' ? json.input : '');

/** TTS is priced by the character (tts-1) or by text tokens in and audio tokens out (gpt-4o-mini-tts). */
export const audioSpeech: MeteredEndpoint = {
  name: 'audio.speech',
  method: 'POST',
  suffix: '/audio/speech',
  body: 'json',
  streamable: false,
  hold({ json, bodyBytes }) {
    const usage = emptyUsage();
    const input = speechInput(json);
    usage.speechCharacters = input.length;
    usage.tokens.prompt = bodyBytes;
    usage.tokens.completion = usage.tokens.audioCompletion = input.length * 2;
    return { usage, tokens: usage.tokens.prompt + usage.tokens.completion, audioMs: 0 };
  },
  unreported: whenServed(({ req, hold }) => {
    const none = nothing(hold);
    return { usage: { ...none, speechCharacters: hold.usage.speechCharacters, tokens: { ...none.tokens, prompt: countTokens(req.model, speechInput(req.json)) } }, source: 'estimated' };
  }),
};
