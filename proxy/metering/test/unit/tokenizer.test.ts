import assert from 'node:assert/strict';
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
});
