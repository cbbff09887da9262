// "Copy as code": the same request as the page's settings, with the together SDK, the openai SDK and curl.
import { speechBody } from "./api.js";

// Keyword arguments of together's speech.create; anything else goes in extra_body.
const TOGETHER_KWARGS = [
  "model", "input", "voice", "language", "stream", "response_format", "response_encoding", "sample_rate", "bit_rate",
];
const EXTENSIONS = ["speed", "seed", "temperature", "top_p", "repetition_penalty", "max_tokens"];

// A JSON string or number is a valid Python literal; booleans and null are spelt differently.
const py = (value) => (typeof value === "boolean" ? (value ? "True" : "False") : value === null ? "None" : JSON.stringify(value));

function pyDict(object) {
  return `{${Object.entries(object).map(([k, v]) => `${py(k)}: ${py(v)}`).join(", ")}}`;
}

function pick(object, keys) {
  return Object.fromEntries(keys.filter((k) => k in object).map((k) => [k, object[k]]));
}

function kwargs(args, indent = "    ") {
  return Object.entries(args)
    .map(([k, v]) => `${indent}${k}=${typeof v === "object" ? pyDict(v) : py(v)},`)
    .join("\n");
}

function apiKey(s) {
  return s.keyed ? 'os.environ["TTS_API_KEY"]' : '"unused"';
}

// The import lines, stdlib first, then the client, with the key from the environment (never the typed one).
function preamble(s, stdlib, sdk, construct) {
  const imports = [...stdlib, ...(s.keyed ? ["import os"] : [])].sort();
  return [
    ...imports,
    ...(imports.length ? [""] : []),
    sdk,
    "",
    ...(s.keyed ? [] : ["# This server needs no key; the SDK wants one all the same."]),
    `client = ${construct}(base_url=${py(s.base)}, api_key=${apiKey(s)})`,
  ];
}

export function togetherCode(s, output) {
  const body = speechBody(s, output);
  const args = pick(body, TOGETHER_KWARGS);
  const extra = pick(body, EXTENSIONS);
  if (Object.keys(extra).length) args.extra_body = extra;
  const head = preamble(s, output === "stream" ? ["import base64"] : [], "from together import Together", "Together");
  if (output === "stream") {
    return [
      ...head,
      "pcm = bytearray()",
      "for chunk in client.audio.speech.create(",
      kwargs(args),
      "):",
      `    pcm += base64.b64decode(chunk.b64)  # 16-bit mono PCM at ${s.sampleRate} Hz, as it is generated`,
    ].join("\n");
  }
  return [...head, "response = client.audio.speech.create(", kwargs(args), ")", `response.write_to_file("speech.${output}")`]
    .join("\n");
}

export function openaiCode(s, output) {
  // OpenAI's body has no language, sample rate or sampling options: with any of them the server reads the
  // request as Together's (see the README), which has no "pcm" format, so the stream is then a WAV.
  const together = pick(speechBody(s, "wav"), ["temperature", "top_p", "repetition_penalty", "max_tokens"]);
  if (s.language !== "en" || s.sampleRate !== 24000 || Object.keys(together).length) {
    Object.assign(together, { language: s.language, sample_rate: s.sampleRate });
  }
  const dialect = Object.keys(together).length ? "together" : "openai";
  const format = output === "stream" ? (dialect === "openai" ? "pcm" : "wav") : output;
  const args = { model: s.model, voice: s.voice, input: s.input, response_format: format };
  if (s.speed !== 1) args.speed = s.speed;
  const extra = { ...(s.seed !== null ? { seed: s.seed } : {}), ...together };
  if (Object.keys(extra).length) args.extra_body = extra;
  const file = format === "pcm" ? "speech.pcm" : `speech.${format}`;
  const note = format === "pcm" ? "  # raw 24 kHz 16-bit mono, written as it arrives" : "";
  return [
    ...preamble(s, [], "from openai import OpenAI", "OpenAI"),
    "with client.audio.speech.with_streaming_response.create(",
    kwargs(args),
    ") as response:",
    `    response.stream_to_file(${py(file)})${note}`,
  ].join("\n");
}

const shellQuote = (text) => `'${text.replace(/'/g, "'\\''")}'`;

export function curlCode(s, output) {
  const body = speechBody(s, output);
  const lines = [`curl -s${output === "stream" ? "N" : ""} ${shellQuote(`${s.base}/audio/speech`)}`];
  if (s.keyed) lines.push('  -H "Authorization: Bearer $TTS_API_KEY"');
  lines.push("  -H 'Content-Type: application/json'");
  lines.push(`  -d ${shellQuote(JSON.stringify(body))}`);
  if (output !== "stream") lines.push(`  -o speech.${output}`);
  const code = lines.join(" \\\n");
  return output === "stream" ? `${code}\n# one "data: {...}" event per chunk (base64 in b64), then data: [DONE]` : code;
}

export const SNIPPETS = { together: togetherCode, openai: openaiCode, curl: curlCode };
