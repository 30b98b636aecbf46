import assert from 'node:assert/strict';
import tiktoken from 'tiktoken';
import { countChatPromptTokens, countTokens, encodingForModel } from '../../src/tokenizer.js';

describe('tokenizer', () => {
  it('picks the encoding of the model family', () => {
    assert.equal(encodingForModel('gpt-4o-mini'), 'o200k_base');
    assert.equal(encodingForModel('gpt-4.1'), 'o200k_base');
    assert.equal(encodingForModel('o3'), 'o200k_base');
    assert.equal(encodingForModel('gpt-4'), 'cl100k_base');
    assert.equal(encodingForModel('gpt-3.5-turbo'), 'cl100k_base');
    assert.equal(encodingForModel('text-embedding-3-small'), 'cl100k_base');
  });

  it('counts real tokens, not characters', function () {
    // The first count loads both encodings' ranks: seconds on a slow, busy machine.
    this.timeout(20_000);
    // "hello world" is two tokens in both encodings.
    assert.equal(countTokens('gpt-4o', 'hello world'), 2);
    assert.equal(countTokens('gpt-3.5-turbo', 'hello world'), 2);
    assert.equal(countTokens('gpt-4o', ''), 0);
    // A model may well write a special token's text: it is counted, not refused.
    assert.ok(countTokens('gpt-4o', 'end <|endoftext|> here') > 3);
    // The cookbook's count for [{role:user, content:"hello world"}]: 3 + 3 + 1 + 2.
    assert.equal(countChatPromptTokens('gpt-4o', [{ role: 'user', content: 'hello world' }]), 9);
  });

  it('counts a long run with no break in pieces: exact for ordinary text, at most a token a piece over for a run', function () {
    this.timeout(20_000);
    const { get_encoding } = tiktoken;
    const exact = (text: string) => get_encoding('o200k_base').encode(text).length;
    const prose = 'Yugong moved the mountains, one basket at a time. 愚公移山，日复一日。 '.repeat(200);
    assert.equal(countTokens('gpt-4o', prose), exact(prose), 'ordinary text is counted exactly');
    // Runs of one class, and of two classes in turn (which the tokenizer's word split keeps as one word).
    for (const run of [
      'a'.repeat(10_000),
      ' '.repeat(10_000),
      '愚'.repeat(5_000),
      '🏔'.repeat(3_000),
      `${'x'.repeat(3_000)} and ${'y'.repeat(3_000)}`,
      ' \u202f'.repeat(3_000),
      '!\u200b'.repeat(3_000),
    ]) {
      const e = exact(run);
      const n = countTokens('gpt-4o', run);
      assert.ok(n >= e && n <= e + Math.ceil(run.length / 256) + 2, `${n} for ${e} exact tokens`);
    }
    // 400,000 letters, or alternating classes: linear work (a whole-run count is quadratic: minutes).
    assert.ok(countTokens('gpt-4o', 'a'.repeat(400_000)) > 0);
    assert.ok(countTokens('gpt-4o', ' \u202f'.repeat(200_000)) > 0);
  });
});
