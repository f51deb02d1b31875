// Layer 0 (utilities): MD5 of a string's UTF-8 bytes, as lowercase hex. Used for
// one thing only: the conversation_id of a 1:1 chat,
// md5("{min_user_id}:{max_user_id}") (docs/protocol.md).

const SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);

function md5(text) {
  const bytes = new TextEncoder().encode(text);
  const n = bytes.length;
  const words = new Int32Array((((n + 8) >>> 6) + 1) * 16);
  for (let i = 0; i < n; i++) words[i >> 2] |= bytes[i] << ((i % 4) * 8);
  words[n >> 2] |= 0x80 << ((n % 4) * 8);
  words[words.length - 2] = n * 8;
  words[words.length - 1] = Math.floor(n / 0x20000000);
  let a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
  for (let off = 0; off < words.length; off += 16) {
    let a = a0, b = b0, c = c0, d = d0;
    for (let i = 0; i < 64; i++) {
      let f, g;
      if (i < 16) { f = (b & c) | (~b & d); g = i; }
      else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
      else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
      else { f = c ^ (b | ~d); g = (7 * i) % 16; }
      const s = SHIFTS[(i >> 4) * 4 + (i % 4)];
      const x = (a + f + K[i] + words[off + g]) | 0;
      a = d; d = c; c = b;
      b = (b + ((x << s) | (x >>> (32 - s)))) | 0;
    }
    a0 = (a0 + a) | 0; b0 = (b0 + b) | 0; c0 = (c0 + c) | 0; d0 = (d0 + d) | 0;
  }
  let hex = '';
  for (const v of [a0, b0, c0, d0]) {
    for (let j = 0; j < 4; j++) hex += ((v >>> (j * 8)) & 255).toString(16).padStart(2, '0');
  }
  return hex;
}

/** conversation_id of the 1:1 chat between two users (decimal id strings). */
export function singleConversationId(a, b) {
  const [lo, hi] = BigInt(a) < BigInt(b) ? [a, b] : [b, a];
  return md5(`${BigInt(lo)}:${BigInt(hi)}`);
}
