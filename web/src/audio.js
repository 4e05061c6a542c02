// A sensor's clip: an audio player, its waveform and its spectrogram. The WAV
// is fetched once (each fetch of audio is a logged read on the server) and
// decoded by the browser's own Web Audio decoder at the file's sample rate.
import FFT from 'fft.js';
import { h } from './util.js';

/** Object URLs made for players, released when the page is left. */
const urls = new Set();

/** Releases every clip's object URL (call when leaving the page). */
export function releaseClips() {
  for (const u of urls) URL.revokeObjectURL(u);
  urls.clear();
}

/** The sample rate in a WAV header, or 48 kHz if it cannot be read. */
function wavRate(buf) {
  const v = new DataView(buf);
  if (buf.byteLength >= 28 && v.getUint32(0, false) === 0x52494646 && v.getUint32(8, false) === 0x57415645) {
    // "fmt " is the first chunk in every WAV the server stores.
    const rate = v.getUint32(24, true);
    if (rate >= 3000 && rate <= 768000) return rate;
  }
  return 48000;
}

async function decode(buf) {
  const rate = wavRate(buf);
  const ctx = new OfflineAudioContext(1, 1, rate);
  const audio = await ctx.decodeAudioData(buf.slice(0));
  return { samples: audio.getChannelData(0), rate: audio.sampleRate };
}

function drawWaveform(canvas, samples, marker) {
  const g = canvas.getContext('2d');
  const { width, height } = canvas;
  g.fillStyle = '#fafafa';
  g.fillRect(0, 0, width, height);
  let peak = 1e-9;
  for (const s of samples) peak = Math.max(peak, Math.abs(s));
  g.strokeStyle = '#1e3a5f';
  g.beginPath();
  const per = samples.length / width;
  for (let x = 0; x < width; x += 1) {
    let lo = 1;
    let hi = -1;
    const end = Math.min(samples.length, Math.floor((x + 1) * per));
    for (let i = Math.floor(x * per); i < end; i += 1) {
      lo = Math.min(lo, samples[i]);
      hi = Math.max(hi, samples[i]);
    }
    if (lo > hi) continue;
    g.moveTo(x + 0.5, height / 2 - (hi / peak) * (height / 2 - 2));
    g.lineTo(x + 0.5, height / 2 - (lo / peak) * (height / 2 - 2));
  }
  g.stroke();
  if (marker !== null) {
    g.strokeStyle = '#c62828';
    g.beginPath();
    g.moveTo(marker * width, 0);
    g.lineTo(marker * width, height);
    g.stroke();
  }
}

/** A perceptually ordered colour (dark blue → green → yellow) for t in [0, 1]. */
function colour(t) {
  const x = Math.min(1, Math.max(0, t));
  const r = Math.round(255 * Math.min(1, Math.max(0, 1.6 * x - 0.55)));
  const g = Math.round(255 * Math.min(1, Math.max(0, 1.2 * x - 0.05)));
  const b = Math.round(255 * Math.min(1, Math.max(0, 0.45 + 0.6 * Math.sin(Math.PI * (x + 0.1)) - x)));
  return [r, g, b];
}

function drawSpectrogram(canvas, samples, rate) {
  const n = 256;
  const hop = 64;
  const fft = new FFT(n);
  const frames = Math.max(1, Math.floor((samples.length - n) / hop) + 1);
  const bins = n / 2;
  const window = new Float32Array(n).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)));
  const input = new Array(n).fill(0);
  const out = fft.createComplexArray();
  const db = new Float32Array(frames * bins);
  let max = -Infinity;
  for (let f = 0; f < frames; f += 1) {
    for (let i = 0; i < n; i += 1) input[i] = (samples[f * hop + i] || 0) * window[i];
    fft.realTransform(out, input);
    for (let k = 0; k < bins; k += 1) {
      const re = out[2 * k];
      const im = out[2 * k + 1];
      const v = 10 * Math.log10(re * re + im * im + 1e-12);
      db[f * bins + k] = v;
      if (v > max) max = v;
    }
  }
  const range = 70; // dB shown below the loudest cell
  const img = new ImageData(frames, bins);
  for (let f = 0; f < frames; f += 1) {
    for (let k = 0; k < bins; k += 1) {
      const [r, g, b] = colour((db[f * bins + k] - (max - range)) / range);
      const o = ((bins - 1 - k) * frames + f) * 4;
      img.data[o] = r;
      img.data[o + 1] = g;
      img.data[o + 2] = b;
      img.data[o + 3] = 255;
    }
  }
  const tmp = document.createElement('canvas');
  tmp.width = frames;
  tmp.height = bins;
  tmp.getContext('2d').putImageData(img, 0, 0);
  const g = canvas.getContext('2d');
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  g.fillStyle = 'rgba(255,255,255,0.85)';
  g.font = '10px system-ui, sans-serif';
  g.fillText(`${(rate / 2000).toFixed(0)} kHz`, 3, 10);
  g.fillText('0', 3, canvas.height - 3);
}

/**
 * A clip panel for one arrival: fetches the clip, plays it, and draws the
 * waveform (with the arrival marked) and the spectrogram. `leadS` is where
 * the pulse falls in the clip: a sensor's clip starts 1 s before the pulse's
 * onset (the clip convention of the report format).
 */
export function clipPanel(url, title, { leadS = null } = {}) {
  const wave = h('canvas', { width: 560, height: 70, class: 'wave', 'aria-label': `waveform, ${title}` });
  const spec = h('canvas', { width: 560, height: 90, class: 'spec', 'aria-label': `spectrogram, ${title}` });
  const player = h('audio', { controls: true, preload: 'none' });
  const note = h('span', { class: 'muted' }, 'loading…');
  const panel = h('figure', { class: 'clip', dataset: { state: 'loading' } }, h('figcaption', {}, title, ' ', note), player, wave, spec);
  (async () => {
    try {
      const r = await fetch(url);
      if (r.status === 404) {
        note.textContent = 'no clip stored for this pulse';
        panel.dataset.state = 'none';
        player.remove(); wave.remove(); spec.remove();
        return;
      }
      if (!r.ok) throw new Error(`${r.status}`);
      const buf = await r.arrayBuffer();
      const objectUrl = URL.createObjectURL(new Blob([buf], { type: 'audio/wav' }));
      urls.add(objectUrl);
      player.src = objectUrl;
      const { samples, rate } = await decode(buf);
      const seconds = samples.length / rate;
      let marker = null;
      if (leadS !== null && leadS >= 0 && leadS <= seconds) marker = leadS / seconds;
      drawWaveform(wave, samples, marker);
      drawSpectrogram(spec, samples, rate);
      note.textContent = `${seconds.toFixed(2)} s at ${(rate / 1000).toFixed(1)} kHz`;
      panel.dataset.state = 'drawn';
    } catch (e) {
      note.textContent = `could not load the clip (${e.message})`;
      panel.dataset.state = 'failed';
    }
  })();
  return panel;
}
