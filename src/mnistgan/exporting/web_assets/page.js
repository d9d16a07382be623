/* The page of `mnistgan export --format web`: a 5x5 grid of samples for a seed (the images of
 * `mnistgan generate --seed S`), an interpolation between two of them under a slider, a digit picker
 * for conditional generators and the run's settings.
 *
 * The address may carry: #seed=S, #digit=D, #z=v1,v2,... (one or more z, z_dim numbers each: the grid
 * shows G(z) for them), #test (the bundled test vector, compared with the pixels the export computed
 * in Python) and #engine=js (the plain-JS kernel instead of WebAssembly).
 * The canvas carries what a test needs to read it: data-cols, data-n, data-tile and data-gap.
 */
(function () {
  'use strict';
  const TILE = 28, GAP = 2, COLS = 5, N = 25, STEPS = 9, MAX_SEED = 4294967295;
  const $ = (id) => document.getElementById(id);
  const status = $('status');
  const page = (window.mnistganPage = { timing: {}, draws: 0 });
  const state = { seed: 504, digit: null, z: null, mode: 'seed', a: 0, b: 1, nextEnd: 'a' };
  let model, spec;

  function fail(e) {
    status.dataset.state = 'error';
    status.textContent = 'Error: ' + (e && e.message ? e.message : e);
    console.error(e);
  }
  const guarded = (f) => (...args) => {
    try {
      f(...args);
    } catch (e) {
      fail(e);
    }
  };

  // ---------------------------------------------------------------- the address: #seed=S&digit=D, #z=..., #test
  function readHash() {
    const params = {};
    for (const part of location.hash.slice(1).split('&')) {
      if (!part) continue;
      const i = part.indexOf('=');
      params[decodeURIComponent(i < 0 ? part : part.slice(0, i))] = i < 0 ? '' : decodeURIComponent(part.slice(i + 1));
    }
    return params;
  }

  function applyHash(params) {
    const d = model.zDim;
    state.mode = 'seed';
    state.z = null;
    if ('test' in params) {
      state.mode = 'test';
      state.z = Float64Array.from(MnistganWeb.float32sOf(spec.test.z));
    } else if ('z' in params) {
      const z = params.z.split(/[\s,;]+/).filter(Boolean).map(Number);
      if (!z.length || z.length % d || z.some((v) => !Number.isFinite(v))) {
        throw new Error('#z= needs a multiple of z_dim = ' + d + ' numbers, got ' + z.length);
      }
      state.mode = 'z';
      state.z = Float64Array.from(z);
    }
    if (params.seed !== undefined && validSeed(params.seed) !== null) state.seed = validSeed(params.seed);
    state.digit = model.conditional && /^[0-9]$/.test(params.digit || '') ? Number(params.digit) : null;
    $('seed').value = String(state.seed);
  }

  function writeHash() {
    if (state.mode !== 'seed') return;
    const hash = '#seed=' + state.seed + (state.digit === null ? '' : '&digit=' + state.digit);
    try {
      history.replaceState(null, '', hash);
    } catch (e) {
      // some browsers refuse history changes on file:// pages; the address is a convenience only
    }
  }

  function validSeed(text) {
    if (!/^\s*\d+\s*$/.test(String(text))) return null;
    const s = Number(text);
    return s <= MAX_SEED ? s : null;
  }

  // ---------------------------------------------------------------- drawing
  // [0, 1] -> 0..255 as generator.sample.to_uint8: the float32 product, rounded half to even
  function toByte(v) {
    const x = Math.fround(v * 255);
    let r = Math.round(x);
    if (r - x === 0.5 && r % 2) r -= 1;
    return r < 0 ? 0 : r > 255 ? 255 : r;
  }

  /** Paint n images (Float32Array, (n, C, 28, 28) in [0, 1]) as tiles, cols per row, GAP transparent
   * pixels between them; returns the images as bytes, as drawn. */
  function paint(canvas, images, n, cols) {
    const C = model.channels, hw = TILE * TILE, rows = Math.ceil(n / cols);
    canvas.width = cols * TILE + (cols - 1) * GAP;
    canvas.height = rows * TILE + (rows - 1) * GAP;
    Object.assign(canvas.dataset, { cols, n, tile: TILE, gap: GAP });
    const ctx = canvas.getContext('2d'), img = ctx.createImageData(canvas.width, canvas.height);
    const bytes = new Uint8Array(images.length);
    for (let k = 0; k < n; k++) {
      const x0 = (k % cols) * (TILE + GAP), y0 = Math.floor(k / cols) * (TILE + GAP);
      for (let p = 0; p < hw; p++) {
        const at = 4 * ((y0 + Math.floor(p / TILE)) * canvas.width + x0 + (p % TILE));
        for (let c = 0; c < 3; c++) {
          const j = k * C * hw + (C === 3 ? c : 0) * hw + p; // grey: one plane for R, G and B
          img.data[at + c] = bytes[j] = toByte(images[j]);
        }
        img.data[at + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    fit(canvas);
    return bytes;
  }

  // Fill the canvas's box, at a whole number of device pixels per image pixel where that costs little
  // room (every image pixel the same size); a small canvas (the strip on a phone) fills its box instead
  function fit(canvas) {
    const box = canvas.closest('.fit');
    if (!box) return; // sized by the style sheet
    let room = box.clientWidth;
    if (canvas.id === 'grid') room = Math.min(room, Math.max(240, window.innerHeight - 230));
    const dpr = window.devicePixelRatio || 1, k = Math.floor((room * dpr) / canvas.width);
    canvas.style.width = (k >= 4 ? (k * canvas.width) / dpr : room) + 'px';
  }

  function labelsFor(n) {
    if (!model.conditional) return null;
    return Array.from({ length: n }, (_, i) => (state.digit === null ? i % 10 : state.digit));
  }

  function currentZ() {
    return state.z || MnistganWeb.courseNoise(N, model.zDim, state.seed);
  }

  function drawGrid() {
    const t0 = performance.now(), z = currentZ(), n = z.length / model.zDim;
    const labels = labelsFor(n);
    const images = model.generate(z, n, labels ? { labels } : undefined);
    const bytes = paint($('grid'), images, n, Math.min(COLS, n));
    page.timing.grid_ms = performance.now() - t0;
    state.n = n;
    state.zRows = z;
    state.labels = labels;
    if (state.a >= n) state.a = 0;
    if (state.b >= n) state.b = Math.min(1, n - 1);
    if (state.mode === 'test') checkTestVector(bytes);
    drawPath();
    page.draws++;
    showStatus();
    describeGrid();
  }

  // ---------------------------------------------------------------- interpolation between samples A and B
  function row(z, i) {
    return z.subarray(i * model.zDim, (i + 1) * model.zDim);
  }

  /** G at the points ts of the path from A to B: z by slerp; the cluster or digit code moves linearly
   * from A's to B's (as `mnistgan interpolate`, so the path morphs instead of jumping). */
  function pathImages(ts) {
    const z = state.zRows, d = model.zDim, k = model.k, zs = new Float64Array(ts.length * d);
    const la = state.labels && state.labels[state.a], lb = state.labels && state.labels[state.b];
    const ca = model.codeOf(z, state.a, la), cb = model.codeOf(z, state.b, lb);
    const codes = k ? new Float32Array(ts.length * k) : null;
    ts.forEach((t, i) => {
      zs.set(MnistganWeb.slerp(row(z, state.a), row(z, state.b), t), i * d);
      for (let j = 0; j < k; j++) codes[i * k + j] = ca[j] === cb[j] ? ca[j] : Math.fround((1 - t) * ca[j] + t * cb[j]);
    });
    return model.generate(zs, ts.length, codes ? { codes } : undefined);
  }

  function drawPath() {
    const ts = Array.from({ length: STEPS }, (_, i) => i / (STEPS - 1));
    const strip = pathImages(ts), one = model.outSize;
    paint($('strip'), strip, STEPS, STEPS);
    paint($('end-a'), strip.subarray(0, one), 1, 1);
    paint($('end-b'), strip.subarray((STEPS - 1) * one), 1, 1);
    drawFrame();
    placeMarks();
  }

  function drawFrame() {
    const t0 = performance.now(), slider = $('t'), t = Number(slider.value) / Number(slider.max);
    paint($('frame'), pathImages([t]), 1, 1);
    $('frame').dataset.t = String(t);
    page.timing.frame_ms = performance.now() - t0;
  }

  // the A and B labels over the grid: boxes positioned in percent of the canvas
  function placeMarks() {
    const canvas = $('grid'), marks = $('marks'), cols = Number(canvas.dataset.cols);
    marks.textContent = '';
    const same = state.a === state.b;
    for (const [end, k] of [['A', state.a], ['B', state.b]]) {
      if (same && end === 'B') continue;
      const box = document.createElement('div');
      box.className = 'mark';
      box.dataset.end = same ? 'A = B' : end;
      box.style.left = (100 * (k % cols) * (TILE + GAP)) / canvas.width + '%';
      box.style.top = (100 * Math.floor(k / cols) * (TILE + GAP)) / canvas.height + '%';
      box.style.width = (100 * TILE) / canvas.width + '%';
      box.style.height = (100 * TILE) / canvas.height + '%';
      marks.appendChild(box);
    }
  }

  function pickEnd(event) {
    const canvas = $('grid'), rect = canvas.getBoundingClientRect(), cols = Number(canvas.dataset.cols);
    const x = ((event.clientX - rect.left) / rect.width) * canvas.width;
    const y = ((event.clientY - rect.top) / rect.height) * canvas.height;
    const k = Math.floor(y / (TILE + GAP)) * cols + Math.floor(x / (TILE + GAP));
    if (k < 0 || k >= state.n) return;
    state[state.nextEnd] = k;
    state.nextEnd = state.nextEnd === 'a' ? 'b' : 'a';
    drawPath();
  }

  // ---------------------------------------------------------------- text around the pictures
  function checkTestVector(bytes) {
    const want = MnistganWeb.bytesOf(spec.test.images);
    let worst = want.length === bytes.length ? 0 : 255;
    for (let i = 0; i < Math.min(want.length, bytes.length); i++) worst = Math.max(worst, Math.abs(want[i] - bytes[i]));
    page.testMaxDiff = worst;
    status.dataset.testMaxDiff = String(worst);
  }

  function describeGrid() {
    const hint = $('grid-hint'), code = document.createElement('code');
    hint.textContent = '';
    if (state.mode === 'seed') {
      const words = ['mnistgan generate', '--seed ' + state.seed].concat(state.digit === null ? [] : ['--digit ' + state.digit]);
      words.forEach((w, i) => {
        const span = document.createElement('span'); // a line may break between the words only
        span.className = 'nobr';
        span.textContent = w;
        code.append(i ? ' ' : '', span);
      });
      hint.append('The same images as ', code, '. ');
    } else if (state.mode === 'z') {
      hint.append('G(z) for the ' + state.n + ' z given in the address. ');
    } else {
      const ok = page.testMaxDiff <= 2 ? 'passed' : 'FAILED';
      hint.append(`Self-test ${ok}: the bundled test z, at most ${page.testMaxDiff}/255 from `, code, '. ');
      code.textContent = 'mnistgan generate';
    }
    if (state.n > 1) hint.append('Click two samples to interpolate between them.');
  }

  function showStatus() {
    const engine = model.engine === 'wasm' ? 'WebAssembly' : 'JavaScript';
    status.textContent = `${state.n} images in ${Math.round(page.timing.grid_ms)} ms (${engine}, in this browser)`;
    Object.assign(status.dataset, { state: 'ready', engine: model.engine, seed: String(state.seed), draws: page.draws });
  }

  function showRun() {
    const run = spec.run || {};
    $('run-name').textContent = run.name || 'generator';
    document.title = (run.name || 'generator') + ' · mnistgan';
    const body = $('settings').tBodies[0];
    for (const [label, value] of run.settings || []) {
      const tr = body.insertRow(), th = document.createElement('th');
      th.scope = 'row';
      th.textContent = label;
      tr.appendChild(th);
      tr.insertCell().textContent = value;
    }
  }

  function buildDigits() {
    $('digit-row').hidden = false;
    const box = $('digits');
    for (const value of [null, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = value === null ? '0–9' : String(value);
      b.dataset.digit = value === null ? '' : String(value);
      b.title = value === null ? 'digits 0 to 9 in turn' : 'only ' + value + 's';
      b.addEventListener('click', guarded(() => {
        if (state.mode === 'test') state.mode = 'seed'; // the test vector's pixels are for digits 0-3
        if (state.mode === 'seed') state.z = null;
        state.digit = value;
        markDigit();
        writeHash();
        drawGrid();
      }));
      box.appendChild(b);
    }
    markDigit();
  }

  function markDigit() {
    for (const b of $('digits').children) {
      b.setAttribute('aria-pressed', String(b.dataset.digit === (state.digit === null ? '' : String(state.digit))));
    }
  }

  // ---------------------------------------------------------------- wiring
  function setSeed(seed) {
    state.seed = seed;
    state.mode = 'seed';
    state.z = null;
    $('seed').value = String(seed);
    $('seed').removeAttribute('aria-invalid');
    writeHash();
    drawGrid();
  }

  function start() {
    if (!window.MnistganWeb) throw new Error('mnistgan-web.js did not load: keep the folder’s files together');
    spec = window.MNISTGAN_MODEL;
    if (!spec) throw new Error('model.js did not load: keep the folder’s files together');
    const t0 = performance.now(), params = readHash();
    model = page.model = MnistganWeb.load(spec, { engine: params.engine || 'auto' });
    page.timing.load_ms = performance.now() - t0;
    showRun();
    applyHash(params);
    if (model.conditional) buildDigits();
    $('new').addEventListener('click', guarded(() => {
      let seed;
      do seed = Math.floor(Math.random() * 1e6);
      while (seed === state.seed);
      setSeed(seed);
    }));
    $('seed').addEventListener('input', guarded(() => {
      const seed = validSeed($('seed').value);
      if (seed === null) $('seed').setAttribute('aria-invalid', 'true');
      else if (seed !== state.seed || state.mode !== 'seed') setSeed(seed);
    }));
    $('t').addEventListener('input', guarded(drawFrame));
    $('grid').addEventListener('click', guarded(pickEnd));
    window.addEventListener('hashchange', guarded(() => {
      applyHash(readHash());
      if (model.conditional) markDigit();
      drawGrid();
    }));
    window.addEventListener('resize', () => document.querySelectorAll('canvas').forEach(fit));
    drawGrid();
  }

  guarded(start)();
})();
