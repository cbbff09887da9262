// Audio in the page: 16-bit PCM from base64 chunks, gapless Web Audio playback, and WAV files.

export function base64ToBytes(b64) {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Collects pcm_s16le bytes as they arrive (a chunk may end mid-sample) and hands back whole samples.
export class Pcm16 {
  constructor() {
    this.parts = [];
    this.carry = null;
    this.samples = 0;
    this.bytes = 0;
  }

  // Appends bytes; returns the new whole samples as floats in [-1, 1).
  push(bytes) {
    this.bytes += bytes.length;
    if (this.carry !== null) {
      const joined = new Uint8Array(bytes.length + 1);
      joined[0] = this.carry;
      joined.set(bytes, 1);
      bytes = joined;
      this.carry = null;
    }
    const whole = bytes.length - (bytes.length % 2);
    if (whole < bytes.length) this.carry = bytes[whole];
    const view = new DataView(bytes.buffer, bytes.byteOffset, whole);
    const ints = new Int16Array(whole / 2);
    const floats = new Float32Array(whole / 2);
    for (let i = 0; i < ints.length; i++) {
      ints[i] = view.getInt16(2 * i, true);
      floats[i] = ints[i] / 32768;
    }
    this.parts.push(ints);
    this.samples += ints.length;
    return floats;
  }

  wav(sampleRate) {
    return wavBlob(this.parts, sampleRate);
  }
}

// A RIFF/WAVE file: 44-byte header (PCM, mono, 16-bit), then the samples little-endian.
export function wavBlob(parts, sampleRate) {
  const samples = parts.reduce((n, p) => n + p.length, 0);
  const dataBytes = samples * 2;
  const header = new DataView(new ArrayBuffer(44));
  const ascii = (offset, text) => [...text].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  ascii(0, "RIFF");
  header.setUint32(4, 36 + dataBytes, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  header.setUint32(16, 16, true); // fmt chunk size
  header.setUint16(20, 1, true); // PCM
  header.setUint16(22, 1, true); // mono
  header.setUint32(24, sampleRate, true);
  header.setUint32(28, sampleRate * 2, true); // byte rate
  header.setUint16(32, 2, true); // block align
  header.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  header.setUint32(40, dataBytes, true);
  const body = new DataView(new ArrayBuffer(dataBytes));
  let offset = 0;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++, offset += 2) body.setInt16(offset, part[i], true);
  }
  return new Blob([header.buffer, body.buffer], { type: "audio/wav" });
}

// Plays chunks back to back as they arrive: each becomes an AudioBuffer scheduled where the last ends.
// Keeps the map from audio time (seconds into the speech) to the context's clock for word highlighting.
export class StreamPlayer {
  constructor() {
    this.ctx = null;
    this.sources = [];
    this.segments = [];
    this.next = 0;
    this.underruns = 0;
  }

  // Call from a click (browsers start audio only after a user gesture). Returns false without audio.
  async start() {
    this.stop();
    try {
      if (!this.ctx) this.ctx = new (window.AudioContext || window.webkitAudioContext)();
      if (this.ctx.state !== "running") {
        await Promise.race([this.ctx.resume(), new Promise((resolve) => setTimeout(resolve, 1000))]);
      }
    } catch {
      this.ctx = null;
    }
    return this.ctx !== null;
  }

  push(floats, sampleRate) {
    if (!this.ctx || floats.length === 0) return;
    const buffer = this.ctx.createBuffer(1, floats.length, sampleRate);
    buffer.copyToChannel(floats, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.ctx.destination);
    const now = this.ctx.currentTime;
    const lead = this.segments.length === 0 ? 0.1 : 0.02; // a little slack before the first buffer
    if (this.segments.length > 0 && this.next < now) this.underruns += 1;
    const at = Math.max(this.next, now + lead);
    source.start(at);
    source.onended = () => {
      this.sources = this.sources.filter((s) => s !== source);
    };
    this.sources.push(source);
    const audioStart = this.segments.length ? this.segments.at(-1).audioEnd : 0;
    const duration = floats.length / sampleRate;
    this.segments.push({ ctxStart: at, audioStart, audioEnd: audioStart + duration });
    this.next = at + duration;
  }

  // Seconds into the speech being heard now; -1 before the first sample plays.
  audioTime() {
    if (!this.ctx) return -1;
    const now = this.ctx.currentTime;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i];
      if (now >= seg.ctxStart) return Math.min(seg.audioStart + (now - seg.ctxStart), seg.audioEnd);
    }
    return -1;
  }

  get playing() {
    return this.ctx !== null && this.sources.length > 0;
  }

  stop() {
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // never started
      }
    }
    this.sources = [];
    this.segments = [];
    this.next = 0;
    this.underruns = 0;
  }
}
