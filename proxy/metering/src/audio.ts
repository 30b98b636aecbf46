/**
 * Duration of an uploaded audio file, for Whisper's per-second billing when upstream does
 * not report it. WAV is exact (header); MP3 is read from the first frame's bitrate (exact for
 * constant bitrate); anything else is estimated at 128 kbit/s and says so.
 */
export interface AudioDuration {
  ms: number;
  exact: boolean;
}

/**
 * A PCM or float WAV's length from its data's actual size and its format (rate, channels,
 * sample size), never from the header's byteRate or data size, which a hostile file sets
 * to anything (a byteRate of 0xFFFFFFFF made any file 0 ms long). Anything else, or a
 * format out of range, is not exact.
 */
function wavDuration(buf: Buffer): AudioDuration | null {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') return null;
  let bytesPerSecond = 0;
  let offset = 12;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    if (id === 'fmt ' && offset + 24 <= buf.length) {
      const format = buf.readUInt16LE(offset + 8);
      const channels = buf.readUInt16LE(offset + 10);
      const sampleRate = buf.readUInt32LE(offset + 12);
      const bits = buf.readUInt16LE(offset + 22);
      const pcm = format === 1 || format === 3 || format === 0xfffe;
      if (pcm && channels >= 1 && channels <= 16 && sampleRate >= 1000 && sampleRate <= 768_000 && [8, 16, 24, 32, 64].includes(bits)) {
        bytesPerSecond = sampleRate * channels * (bits / 8);
      }
    }
    if (id === 'data') {
      if (bytesPerSecond === 0) return null;
      const dataBytes = buf.length - offset - 8;
      return { ms: Math.round((dataBytes * 1000) / bytesPerSecond), exact: true };
    }
    offset += 8 + size + (size % 2);
  }
  return null;
}

const MP3_BITRATES_V1_L3 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];

function mp3Duration(buf: Buffer): AudioDuration | null {
  let start = 0;
  if (buf.toString('ascii', 0, 3) === 'ID3' && buf.length > 10) {
    // ID3v2 size is a 28-bit "syncsafe" integer.
    const size = ((buf[6] ?? 0) << 21) | ((buf[7] ?? 0) << 14) | ((buf[8] ?? 0) << 7) | (buf[9] ?? 0);
    start = 10 + size;
  }
  for (let i = start; i + 4 <= Math.min(buf.length, start + 4096); i++) {
    if (buf[i] === 0xff && ((buf[i + 1] ?? 0) & 0xe0) === 0xe0) {
      const bitrate = MP3_BITRATES_V1_L3[((buf[i + 2] ?? 0) >> 4) & 0x0f];
      if (!bitrate) continue;
      return { ms: Math.round(((buf.length - i) * 8) / bitrate), exact: true };
    }
  }
  return null;
}

export function audioDuration(buf: Buffer): AudioDuration {
  return wavDuration(buf) ?? mp3Duration(buf) ?? { ms: Math.round((buf.length * 8) / 128), exact: false };
}

/** A silent 16-bit mono PCM WAV of the given length, for tests and demos. */
export function silentWav(ms: number, sampleRate = 16000): Buffer {
  const samples = Math.round((ms * sampleRate) / 1000);
  const data = samples * 2;
  const buf = Buffer.alloc(44 + data);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + data, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(sampleRate, 24);
  buf.writeUInt32LE(sampleRate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(data, 40);
  return buf;
}
