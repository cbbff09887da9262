// The playground page: settings from /v1/voices, streamed speech through Web Audio, downloads, code.
import { ApiError, Client, apiUrl, sseEvents, speechBody } from "./api.js";
import { Pcm16, StreamPlayer, base64ToBytes } from "./audio.js";
import { SNIPPETS } from "./snippets.js";
import { WordTrack } from "./words.js";

const $ = (id) => document.getElementById(id);

// Together's language codes (what `language` accepts); a model may speak fewer.
const LANGUAGES = {
  en: "English", de: "German", fr: "French", es: "Spanish", hi: "Hindi", it: "Italian", ja: "Japanese",
  ko: "Korean", nl: "Dutch", pl: "Polish", pt: "Portuguese", ru: "Russian", sv: "Swedish", tr: "Turkish",
  zh: "Chinese",
};
const ORPHEUS_TAGS = ["laugh", "chuckle", "sigh", "cough", "sniffle", "groan", "yawn", "gasp"];
const SPEED_RANGE = { kokoro: [0.5, 2], cartesia: [0.6, 1.5], other: [0.5, 2] };

const client = new Client();
const player = new StreamPlayer();
const stats = {
  requests: 0, chunks: 0, bytes: 0, samples: 0, sampleRate: null, firstAudioMs: null, elapsedMs: null,
  audioSeconds: 0, rtf: null, words: 0, wordsHighlighted: 0, underruns: 0, done: false, error: null,
  playback: null, downloads: 0, loads: 0, loading: false, voices: 0,
};
const state = { models: [], voices: new Map(), pcm: null, busy: false, abort: null, codeLang: "together" };
const words = new WordTrack($("words"), stats);

// For tests and the curious: counters, the last settings, and the actions.
window.playground = { stats, state, settings: () => settings(), speak, stop, load };

export function kind(model) {
  const m = (model || "").toLowerCase();
  if (m.includes("orpheus")) return "orpheus";
  if (m.startsWith("cartesia/")) return "cartesia";
  if (m.includes("kokoro")) return "kokoro";
  return "other";
}

const hasWords = (s) => (s.kind === "kokoro" && s.language === "en") || s.kind === "cartesia";
const trimNumber = (x) => String(Math.round(x * 100) / 100);

function numberOrNull(id) {
  const raw = $(id).value.trim();
  return raw === "" || Number.isNaN(Number(raw)) ? null : Number(raw);
}

// The current settings, as the request and the code snippets use them.
function settings() {
  const model = $("model").value;
  const k = kind(model);
  let voice = $("voice").value;
  const other = $("voice-b").value;
  if (k === "kokoro" && $("mix-on").checked && other && other !== voice) {
    const w = Number($("mix-weight").value);
    voice = `${voice}(${trimNumber(w)})+${other}(${trimNumber(1 - w)})`;
  }
  const sampling = {};
  if (k === "orpheus") {
    for (const [field, id] of [["temperature", "temperature"], ["top_p", "top-p"],
      ["repetition_penalty", "repetition-penalty"], ["max_tokens", "max-tokens"]]) {
      const value = numberOrNull(id);
      if (value !== null) sampling[field] = value;
    }
  }
  return {
    model, kind: k, voice, input: $("text").value, language: $("language").value || "en",
    speed: k === "orpheus" ? 1 : Number($("speed").value), sampleRate: Number($("sample-rate").value),
    seed: numberOrNull("seed"), sampling, keyed: client.key !== "", base: apiUrl("v1").replace(/\/$/, ""),
  };
}

// --- messages ------------------------------------------------------------------------------------------
function showError(error) {
  const message = error instanceof ApiError && error.status ? `${error.status}: ${error.message}` : error.message;
  stats.error = message;
  $("error").textContent = message;
  $("error").hidden = false;
  if (error instanceof ApiError && error.status === 401) $("api-key").focus();
}

function clearError() {
  stats.error = null;
  $("error").hidden = true;
}

function option(value, label = value) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = label;
  return element;
}

// --- models and voices ---------------------------------------------------------------------------------
async function load() {
  clearError();
  stats.loads += 1;
  stats.loading = true;
  const keep = { model: $("model").value, voice: $("voice").value };
  try {
    const [cards, listing] = await Promise.all([client.get("v1/models"), client.get("v1/voices")]);
    const available = new Map((Array.isArray(cards) ? cards : cards.data || []).map((c) => [c.id, c.available]));
    state.models = listing.data.map((entry) => entry.model);
    state.voices = new Map(listing.data.map((entry) => [entry.model, entry.voices]));
    $("model").replaceChildren(
      ...state.models.map((m) => {
        const count = state.voices.get(m).length;
        const down = available.get(m) === false ? ", unavailable" : "";
        return option(m, `${m} (${count} voice${count === 1 ? "" : "s"}${down})`);
      }),
    );
    if (state.models.includes(keep.model)) $("model").value = keep.model;
    onModel(keep.voice);
  } catch (error) {
    state.models = [];
    state.voices = new Map();
    $("model").replaceChildren();
    onModel();
    showError(error);
  } finally {
    stats.loading = false;
  }
}

function voiceLabel(v) {
  const extra = [v.language, v.gender].filter(Boolean).join(", ");
  const name = v.name && v.name !== v.id ? `${v.name} (${v.id.slice(0, 8)}…)` : v.id;
  return extra ? `${name} · ${extra}` : name;
}

function onModel(keepVoice = null) {
  const model = $("model").value;
  const k = kind(model);
  const voices = state.voices.get(model) || [];
  stats.voices = voices.length;
  for (const id of ["voice", "voice-b"]) $(id).replaceChildren(...voices.map((v) => option(v.id, voiceLabel(v))));
  if (keepVoice && voices.some((v) => v.id === keepVoice)) $("voice").value = keepVoice;
  if (voices.length > 1) $("voice-b").value = voices.find((v) => v.id !== $("voice").value).id;

  const codes = k === "cartesia" ? Object.keys(LANGUAGES)
    : [...new Set(voices.map((v) => (v.language || "").slice(0, 2).toLowerCase()))].filter((c) => c in LANGUAGES);
  if (!codes.length) codes.push("en");
  $("language").replaceChildren(...codes.map((c) => option(c, `${LANGUAGES[c]} (${c})`)));

  $("mix-box").hidden = k !== "kokoro" || voices.length < 2;
  $("orpheus-box").hidden = k !== "orpheus";
  $("tags").hidden = k !== "orpheus";
  $("speed-box").hidden = k === "orpheus"; // Orpheus has no rate control on this route
  const [lo, hi] = SPEED_RANGE[k] || SPEED_RANGE.other;
  Object.assign($("speed"), { min: lo, max: hi });
  $("speed").value = Math.min(hi, Math.max(lo, Number($("speed").value)));
  onVoice();
}

function onVoice() {
  const voice = (state.voices.get($("model").value) || []).find((v) => v.id === $("voice").value);
  const code = voice && voice.language ? voice.language.slice(0, 2).toLowerCase() : null;
  if (code && [...$("language").options].some((o) => o.value === code)) $("language").value = code;
  refresh();
}

// Everything that follows from the settings without a request: labels, notes, the code box.
function refresh() {
  const s = settings();
  $("speed-value").textContent = `${Number($("speed").value).toFixed(2)}×`;
  $("mix-controls").hidden = !$("mix-on").checked;
  const w = Number($("mix-weight").value);
  $("mix-label").textContent = `${$("voice").value} ${Math.round(w * 100)}% · ${$("voice-b").value} ${Math.round((1 - w) * 100)}%`;
  $("words-note").textContent = hasWords(s) ? "" : "(word timings: Kokoro in English and Cartesia only)";
  $("code").textContent = s.model
    ? SNIPPETS[state.codeLang](s, $("code-output").value)
    : "# Connect to the server (with its API key if it needs one) to see the call for these settings.";
}

// --- speaking ------------------------------------------------------------------------------------------
function resetRun() {
  Object.assign(stats, {
    chunks: 0, bytes: 0, samples: 0, firstAudioMs: null, elapsedMs: null, audioSeconds: 0, rtf: null,
    words: 0, wordsHighlighted: 0, underruns: 0, done: false, playback: null,
  });
  words.clear();
  clearError();
  render();
}

function render() {
  $("stat-ttfa").textContent = stats.firstAudioMs === null ? "–" : `${Math.round(stats.firstAudioMs)} ms`;
  $("stat-rtf").textContent = stats.rtf === null ? "–" : `${stats.rtf.toFixed(2)} (${(1 / stats.rtf).toFixed(1)}× real time)`;
  $("stat-audio").textContent = stats.samples ? `${stats.audioSeconds.toFixed(2)} s @ ${stats.sampleRate} Hz` : "–";
  $("stat-bytes").textContent = stats.bytes ? `${(stats.bytes / 1024).toFixed(1)} KiB in ${stats.chunks} chunks` : "–";
}

function setBusy(busy) {
  state.busy = busy;
  $("speak").disabled = busy;
  $("stop").disabled = !busy;
  $("download-wav").disabled = busy || !state.pcm || state.pcm.samples === 0;
}

async function speak() {
  if (state.busy) return;
  const s = settings();
  if (!s.model) return showError(new Error("No model loaded: connect first (with the API key if the server needs one)."));
  if (!s.input.trim()) return showError(new Error("Type some text to speak."));
  resetRun();
  state.pcm = null;
  setBusy(true);
  stats.requests += 1;
  stats.sampleRate = s.sampleRate;
  const body = speechBody(s, "stream");
  if (hasWords(s)) body.alignment = "word";
  const controller = new AbortController();
  state.abort = controller;
  const started = performance.now();
  stats.playback = await player.start();
  words.follow(player, () => state.busy || player.playing, () => stats.done && stats.playback);
  const pcm = new Pcm16();
  try {
    const response = await client.post("v1/audio/speech", body, controller.signal);
    for await (const event of sseEvents(response)) {
      if (event.type === "conversation.item.word_timestamps") {
        // Together's shape: parallel arrays of words and their start and end seconds.
        words.add(event.words.map((word, i) => ({ word, start: event.start_seconds[i], end: event.end_seconds[i] })));
        continue;
      }
      const b64 = event.b64 || event.delta;
      if (!b64) continue;
      const bytes = base64ToBytes(b64);
      if (stats.firstAudioMs === null) stats.firstAudioMs = performance.now() - started;
      player.push(pcm.push(bytes), s.sampleRate);
      Object.assign(stats, {
        chunks: stats.chunks + 1, bytes: pcm.bytes, samples: pcm.samples,
        audioSeconds: pcm.samples / s.sampleRate, underruns: player.underruns,
      });
      render();
    }
    stats.elapsedMs = performance.now() - started;
    stats.rtf = stats.audioSeconds > 0 ? stats.elapsedMs / 1000 / stats.audioSeconds : null;
    stats.done = true;
  } catch (error) {
    if (error.name === "AbortError") stats.error = "stopped";
    else showError(error);
  } finally {
    state.pcm = pcm;
    state.abort = null;
    setBusy(false);
    render();
  }
}

function stop() {
  if (state.abort) state.abort.abort();
  player.stop();
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  stats.downloads += 1;
}

function downloadWav() {
  if (state.pcm && state.pcm.samples) save(state.pcm.wav(stats.sampleRate), "speech.wav");
}

async function downloadMp3() {
  const s = settings();
  if (!s.model || !s.input.trim()) return showError(new Error("Pick a model and type some text first."));
  const button = $("download-mp3");
  button.disabled = true;
  button.textContent = "encoding…";
  clearError();
  try {
    const response = await client.post("v1/audio/speech", speechBody(s, "mp3"));
    save(await response.blob(), "speech.mp3");
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
    button.textContent = "⤓ MP3";
  }
}

// --- the rest of the page ------------------------------------------------------------------------------
function insertTag(tag) {
  const text = $("text");
  const start = text.selectionStart ?? text.value.length;
  const before = text.value.slice(0, start);
  const spaced = `${before && !/\s$/.test(before) ? " " : ""}<${tag}> `;
  text.setRangeText(spaced, start, text.selectionEnd ?? start, "end");
  text.focus();
  refresh();
}

async function copyCode() {
  const code = $("code").textContent;
  try {
    await navigator.clipboard.writeText(code);
  } catch {
    const range = document.createRange(); // no clipboard permission: select it for Ctrl+C
    range.selectNodeContents($("code"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  $("copy").textContent = "Copied";
  setTimeout(() => ($("copy").textContent = "Copy"), 1500);
}

async function watchReady() {
  const pill = $("server-status");
  try {
    const response = await fetch(apiUrl("ready"));
    const body = await response.json();
    pill.textContent = body.status;
    pill.dataset.state = body.status;
    pill.title = Object.entries(body.models || {}).map(([m, st]) => `${m}: ${st}`).join("\n");
    if (body.status === "loading") setTimeout(watchReady, 2000);
    else if (!stats.voices && !stats.error) load(); // voices appear once the models have loaded
  } catch {
    pill.textContent = "unreachable";
    pill.dataset.state = "failed";
    setTimeout(watchReady, 5000);
  }
}

function wire() {
  $("tags").replaceChildren(
    ...ORPHEUS_TAGS.map((tag) => {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = `<${tag}>`;
      chip.addEventListener("click", () => insertTag(tag));
      return chip;
    }),
  );
  const key = $("api-key");
  key.addEventListener("change", () => {
    client.key = key.value.trim();
    load();
  });
  $("reload").addEventListener("click", () => {
    client.key = key.value.trim();
    load();
  });
  $("model").addEventListener("change", () => onModel());
  $("voice").addEventListener("change", onVoice);
  $("speak").addEventListener("click", speak);
  $("stop").addEventListener("click", stop);
  $("download-wav").addEventListener("click", downloadWav);
  $("download-mp3").addEventListener("click", downloadMp3);
  $("copy").addEventListener("click", copyCode);
  $("text").addEventListener("keydown", (e) => (e.ctrlKey || e.metaKey) && e.key === "Enter" && speak());
  for (const tab of document.querySelectorAll("[data-lang]")) {
    tab.addEventListener("click", () => {
      state.codeLang = tab.dataset.lang;
      for (const t of document.querySelectorAll("[data-lang]")) t.setAttribute("aria-selected", t === tab);
      refresh();
    });
  }
  document.querySelector(".settings").addEventListener("input", refresh);
  $("text").addEventListener("input", refresh);
  $("code-output").addEventListener("change", refresh);
}

wire();
load().then(watchReady);
