// Word timestamps: the words the server timed, highlighted while the player is inside each one.

export class WordTrack {
  constructor(element, stats) {
    this.element = element;
    this.stats = stats;
    this.words = [];
    this.frame = null;
  }

  clear() {
    this.stop();
    this.words = [];
    this.element.replaceChildren();
  }

  // words: [{word, start, end}] in seconds from the start of the speech.
  add(words) {
    for (const { word, start, end } of words) {
      const span = document.createElement("span");
      span.textContent = word;
      span.title = `${start.toFixed(2)}–${end.toFixed(2)} s`;
      this.element.append(span, " ");
      this.words.push({ start, end, span, reached: false });
    }
    this.stats.words = this.words.length;
  }

  // Follows player.audioTime() each animation frame until keepGoing() turns false; then, if all the audio
  // was heard (finished()), every word has been spoken, including one timed to end past the last sample.
  follow(player, keepGoing, finished) {
    this.stop();
    const tick = () => {
      const going = keepGoing();
      this.paint(!going && finished() ? Infinity : player.audioTime());
      this.frame = going ? requestAnimationFrame(tick) : null;
    };
    this.frame = requestAnimationFrame(tick);
  }

  paint(t) {
    for (const w of this.words) {
      const current = t >= w.start && t < w.end;
      const spoken = t >= w.end;
      w.span.classList.toggle("current", current);
      w.span.classList.toggle("spoken", spoken);
      if ((current || spoken) && !w.reached) {
        w.reached = true;
        this.stats.wordsHighlighted += 1;
      }
    }
  }

  stop() {
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
  }
}
