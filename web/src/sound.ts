// Alarm sound: IEC 60601-1-8-style pulse patterns through the Web Audio API.
// Only after the user pressed "Enable sound" (browsers block audio until a
// gesture, and an unexpected sound on page load is worse than none). The pure
// part, `burst`, is the pattern; `AlarmSound` plays it. Not a certified alarm
// system (docs/ALARMS.md).
//
// Timing (IEC 60601-1-8 table 3 ranges, the values chosen here):
//   pulse duration td 75–200 ms → 100 ms (high), 180 ms (medium); 10 ms rise and fall
//   pulse spacing ts (end of one to start of next): high 50–125 ms → 75 ms;
//                                                   medium 125–250 ms → 200 ms
//   high: 10 pulses as x-x-x--x-x, pause, x-x-x--x-x (gap between the 3 and the 2:
//         2 × ts + td; between the two halves: 0.35–1.3 s → 0.5 s)
//   medium: 3 pulses x-x-x
//   burst repetition: high every 6 s (2.5–15 s), medium every 12 s (2.5–30 s)
//   fundamental in 150–1000 Hz with harmonics (a square wave has the odd ones):
//   high 660 Hz, medium 520 Hz. Low priority is silent here (the visual class stays).

export type Tone = 'high' | 'medium';

export interface Pulse { at: number; dur: number }  // seconds from the burst's start

export const REPEAT_S: Record<Tone, number> = { high: 6, medium: 12 };
export const FREQ_HZ: Record<Tone, number> = { high: 660, medium: 520 };

/** The pulses of one burst. */
export function burst(tone: Tone): Pulse[] {
  if (tone === 'medium') {
    const td = 0.18, ts = 0.2;
    return [0, 1, 2].map((i) => ({ at: i * (td + ts), dur: td }));
  }
  const td = 0.1, ts = 0.075, step = td + ts, half = 0.5;
  const group = (t0: number) => [0, 1, 2].map((i) => t0 + i * step).concat([3, 4].map((i) => t0 + i * step + step));
  const first = group(0);
  const second = group(first[4] + td + half);
  return [...first, ...second].map((at) => ({ at: Math.round(at * 1000) / 1000, dur: td }));
}

/** Plays the current tone's bursts until told otherwise; one AudioContext, made on the user's gesture. */
export class AlarmSound {
  private ctx: AudioContext | null = null;
  private tone: Tone | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  /** Call from a click handler (autoplay policy). Returns false if Web Audio is unavailable. */
  enable(): boolean {
    const AC = typeof window !== 'undefined' ? (window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext) : undefined;
    if (!AC) return false;
    if (!this.ctx) this.ctx = new AC();
    void this.ctx.resume().catch(() => {});
    return true;
  }

  disable(): void {
    this.set(null);
    void this.ctx?.close().catch(() => {});
    this.ctx = null;
  }

  /** The tone to sound now (null: silence); a change of tone starts its burst at once. */
  set(tone: Tone | null): void {
    if (tone === this.tone) return;
    this.tone = tone;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (tone) this.loop();
  }

  private loop(): void {
    const tone = this.tone;
    if (!tone || !this.ctx) return;
    this.play(tone);
    this.timer = setTimeout(() => this.loop(), REPEAT_S[tone] * 1000);
  }

  private play(tone: Tone): void {
    const ctx = this.ctx!;
    const t0 = ctx.currentTime + 0.02;
    for (const p of burst(tone)) {
      const osc = ctx.createOscillator(), g = ctx.createGain();
      osc.type = 'square';
      osc.frequency.value = FREQ_HZ[tone];
      g.gain.setValueAtTime(0, t0 + p.at);
      g.gain.linearRampToValueAtTime(0.15, t0 + p.at + 0.01);
      g.gain.setValueAtTime(0.15, t0 + p.at + p.dur - 0.01);
      g.gain.linearRampToValueAtTime(0, t0 + p.at + p.dur);
      osc.connect(g).connect(ctx.destination);
      osc.start(t0 + p.at);
      osc.stop(t0 + p.at + p.dur + 0.02);
    }
  }
}
