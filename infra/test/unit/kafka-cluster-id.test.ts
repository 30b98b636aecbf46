import assert from 'node:assert/strict';
import { newClusterId } from '../../src/services/kafka.js';

describe('kafka cluster id', () => {
  it('is 16 random bytes in base64url that the storage tool cannot mistake for an option', () => {
    // One in 64 raw ids starts with '-': 5,000 draws meet such an id with near certainty.
    const ids = Array.from({ length: 5000 }, newClusterId);
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
      assert.equal(Buffer.from(id, 'base64url').length, 16);
    }
    assert.equal(new Set(ids).size, ids.length);
  });
});
