import assert from 'node:assert/strict';
import { audioDuration, silentWav } from '../../src/audio.js';

describe('audio duration', () => {
  it('reads WAV durations exactly from the header', () => {
    assert.deepEqual(audioDuration(silentWav(90_400)), { ms: 90_400, exact: true });
    assert.deepEqual(audioDuration(silentWav(1000, 8000)), { ms: 1000, exact: true });
  });

  it("takes a WAV's length from its data and format, not from what its header claims; short or cut headers are no error", () => {
    const lying = silentWav(2000);
    lying.writeUInt32LE(0xffffffff, 28); // byteRate
    lying.writeUInt32LE(4, 40); // data size
    assert.deepEqual(audioDuration(lying), { ms: 2000, exact: true });
    const absurd = silentWav(1000);
    absurd.writeUInt32LE(0xffffffff, 24); // sample rate out of range: not a length to trust
    assert.equal(audioDuration(absurd).exact, false);
    const whole = silentWav(1000);
    for (let n = 0; n < 48; n++) assert.doesNotThrow(() => audioDuration(whole.subarray(0, n)), `${n} bytes`);
  });

  it('reads constant-bitrate MP3 from its first frame', () => {
    // MPEG-1 layer III frame header, 128 kbit/s (index 9), 44.1 kHz; 16,000 bytes ≈ 1 s.
    const mp3 = Buffer.alloc(16_000);
    mp3.set([0xff, 0xfb, 0x90, 0x64], 0);
    assert.deepEqual(audioDuration(mp3), { ms: 1000, exact: true });
  });

  it('estimates unknown formats and says so', () => {
    assert.deepEqual(audioDuration(Buffer.alloc(32_000)), { ms: 2000, exact: false });
  });
});
