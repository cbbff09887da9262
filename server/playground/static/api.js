// The server's public API as the page uses it: URLs, the bearer key, Together's error body, SSE, request bodies.

// The page lives at <root>/playground/, so the API is one level up: this also works behind a proxy
// that serves the whole server under a path prefix.
export const API_ROOT = new URL("../", window.location.href);

export function apiUrl(path) {
  return new URL(path, API_ROOT).href;
}

export class ApiError extends Error {
  constructor(status, message, code = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

// Together's error body is {"error": {"message", "type", "param", "code"}}; show its message.
export async function toApiError(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) {
      message = body.error.message;
      code = body.error.code || null;
    }
  } catch {
    // not JSON (a proxy's page): keep the status line
  }
  return new ApiError(response.status, message, code);
}

export class Client {
  constructor() {
    this.key = ""; // the key the user typed: in this object only, never stored or put in a URL
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    return headers;
  }

  async get(path) {
    const response = await fetch(apiUrl(path), { headers: this.headers({ Accept: "application/json" }) });
    if (!response.ok) throw await toApiError(response);
    return response.json();
  }

  async post(path, body, signal) {
    const response = await fetch(apiUrl(path), {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
      signal,
    });
    if (!response.ok) throw await toApiError(response);
    return response;
  }
}

// Server-sent events of a fetch response: yields each `data:` payload parsed, stops at [DONE].
export async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buffer += decoder.decode(value, { stream: true });
      if (done) buffer += "\n\n";
      buffer = buffer.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (!data) continue;
        if (data === "[DONE]") return;
        const event = JSON.parse(data);
        if (event.error) throw new ApiError(0, event.error.message || "The stream failed.", event.error.code);
        yield event;
      }
      if (done) return;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// The JSON body of POST /v1/audio/speech for the page's settings. output: "stream", "wav" or "mp3".
export function speechBody(s, output) {
  const body = { model: s.model, input: s.input, voice: s.voice, language: s.language };
  if (output === "stream") {
    Object.assign(body, { stream: true, response_format: "raw", response_encoding: "pcm_s16le" });
  } else {
    body.response_format = output;
  }
  body.sample_rate = s.sampleRate;
  if (s.speed !== 1) body.speed = s.speed;
  if (s.seed !== null) body.seed = s.seed;
  Object.assign(body, s.sampling);
  return body;
}
