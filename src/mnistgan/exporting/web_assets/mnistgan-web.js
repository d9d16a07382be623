/* mnistgan-web: runs a generator exported by `mnistgan export --format web` in the browser.
 *
 * A classic script (no ES module, no fetch), so the page works opened from disk (file://) as well as
 * over HTTP, with no network. It knows the few layers mnistgan's generators are made of; the model
 * description (model.js, written by src/mnistgan/exporting/web.py) lists them as ops:
 *
 *   linear  {in, out, weight, bias}                      y = W x + b, W stored [out][in]
 *   conv_t  {height, width, cin, cout, kernel, stride, padding, out_height, out_width, weight, bias}
 *           ConvTranspose2d on channels-last (HWC) activations, W stored [ky][kx][cout][cin]
 *   norm    {c, eps, gamma, beta}                        LayerNorm / GroupNorm(1, C): over all values
 *                                                        of an image, affine per channel (j % c)
 *   act     {fn, slope, alpha}                           relu, leaky_relu, elu, gelu, silu, tanh
 *
 * BatchNorm is already folded into the linear or conv_t before it. Both linear and conv_t run as one
 * routine (a gather of dot products), in a 513-byte WebAssembly SIMD kernel (conv.wat beside this
 * file in the package) or, where WebAssembly SIMD is missing, the same loop in plain JS.
 *
 *   MnistganWeb.load(window.MNISTGAN_MODEL[, {engine: 'auto' | 'wasm' | 'js'}]) -> model
 *   model.generate(z, n[, {labels, codes}]) -> Float32Array(n * channels * 28 * 28) in [0, 1],
 *       images in PyTorch's (n, channels, 28, 28) order, as `Generator.predict`
 *   model.codeOf(z, i, label) -> the one-hot code (cluster or digit) G uses for row i of z, or null
 *   MnistganWeb.courseNoise(n, zDim, seed) -> numpy's RandomState(seed).normal(size=[n, zDim])
 *   MnistganWeb.slerp(a, b, t) -> the point at t on the great circle from a to b (generator/interpolate.py)
 */
(function (global) {
  'use strict';

  const FORMAT = 'mnistgan-web-1';

  function bytesOf(b64) {
    if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(b64);
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function float32sOf(b64) {
    const bytes = bytesOf(b64);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  // erf after Abramowitz & Stegun 7.1.26 (absolute error 1.5e-7, below float32 resolution here)
  function erf(x) {
    const sign = x < 0 ? -1 : 1;
    x = Math.abs(x);
    const t = 1 / (1 + 0.3275911 * x);
    const poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    return sign * (1 - poly * Math.exp(-x * x));
  }

  const ACTIVATIONS = {
    relu: () => (v) => (v > 0 ? v : 0),
    leaky_relu: (op) => (v) => (v > 0 ? v : v * op.slope),
    elu: (op) => (v) => (v > 0 ? v : op.alpha * Math.expm1(v)),
    gelu: () => (v) => 0.5 * v * (1 + erf(v * Math.SQRT1_2)),
    silu: () => (v) => v / (1 + Math.exp(-v)),
    tanh: () => Math.tanh,
  };

  // conv.wat compiled by `wat2wasm conv.wat`: conv(x, w, b, y, taps, start, npix, co, ci), byte addresses;
  // y[p * co + c] = b[c] + sum over the taps t of pixel p of dot(x + xo_t, w + wo_t + c * ci; ci)
  const KERNEL_B64 =
    'AGFzbQEAAAABDQFgCX9/f39/f39/fwADAgEABQMBAAEHDgIDbWVtAgAEY29udgAACs4DAcsDBAh/AnsBfQN/IAhBeHEhFCAIQXxxIRUgAyEWAkADQCAJIAZPDQFBACEKAkADQCAKIAdPDQH9DAAAAAAAAAAAAAAAAAAAAAAhEf0MAAAAAAAAAAAAAAAAAAAAACESQwAAAAAhEyAFIAlBAnRqKAIAIQsgBSAJQQJ0aigCBCEMAkADQCALIAxPDQEgBCALQQN0aiEOIAAgDigCAEECdGohDyABIA4oAgQgCiAIbGpBAnRqIRBBACENAkADQCANIBRPDQEgESAP/QAEACAQ/QAEAP3mAf3kASERIBIgD/0ABBAgEP0ABBD95gH95AEhEiAPQSBqIQ8gEEEgaiEQIA1BCGohDQwACwsgDSAVSQRAIBEgD/0ABAAgEP0ABAD95gH95AEhESAPQRBqIQ8gEEEQaiEQIA1BBGohDQsCQANAIA0gCE8NASATIA8qAgAgECoCAJSSIRMgD0EEaiEPIBBBBGohECANQQFqIQ0MAAsLIAtBAWohCwwACwsgESAS/eQBIREgFiACIApBAnRqKgIAIBMgEf0fACAR/R8BkiAR/R8CIBH9HwOSkpKSOAIAIBZBBGohFiAKQQFqIQoMAAsLIAlBAWohCQwACwsL';
  let kernel = null; // undefined: tried and failed
  function wasmKernel() {
    if (kernel === null) {
      try {
        kernel = new WebAssembly.Module(bytesOf(KERNEL_B64)); // synchronous: allowed for modules < 4 KB
      } catch (e) {
        kernel = undefined; // no WebAssembly (SIMD): the JS loop below
      }
    }
    return kernel;
  }

  // the kernel's loop in plain JS (offsets in floats and ints instead of bytes)
  function jsConv(F, I, x, w, b, y, taps, start, npix, co, ci) {
    for (let p = 0; p < npix; p++) {
      const t0 = I[start + p], t1 = I[start + p + 1];
      for (let c = 0; c < co; c++) {
        let acc = 0;
        for (let t = t0; t < t1; t++) {
          const xb = x + I[taps + 2 * t], wb = w + I[taps + 2 * t + 1] + c * ci;
          for (let i = 0; i < ci; i++) acc += F[xb + i] * F[wb + i];
        }
        F[y + p * co + c] = acc + F[b + c];
      }
    }
  }

  // The taps of each output pixel: pairs (input offset, weight offset) in floats, and where each pixel's run
  // starts. Linear: one pixel, one tap. ConvTranspose2d: input pixel (iy, ix) adds x[iy, ix] W[ky, kx] to
  // output (iy * s - p + ky, ix * s - p + kx), so output (oy, ox) gathers the (ky, kx) with oy + p - ky = iy * s.
  function tapsOf(op) {
    if (op.op === 'linear') return { taps: [0, 0], start: [0, 1], npix: 1, co: op.out, ci: op.in };
    const [kh, kw] = op.kernel, [sh, sw] = op.stride, [ph, pw] = op.padding;
    const taps = [], start = [0];
    for (let oy = 0; oy < op.out_height; oy++) {
      for (let ox = 0; ox < op.out_width; ox++) {
        for (let ky = 0; ky < kh; ky++) {
          const ny = oy + ph - ky;
          if (ny < 0 || ny % sh || ny / sh >= op.height) continue;
          for (let kx = 0; kx < kw; kx++) {
            const nx = ox + pw - kx;
            if (nx < 0 || nx % sw || nx / sw >= op.width) continue;
            taps.push(((ny / sh) * op.width + nx / sw) * op.cin, (ky * kw + kx) * op.cout * op.cin);
          }
        }
        start.push(taps.length / 2);
      }
    }
    return { taps, start, npix: op.out_height * op.out_width, co: op.cout, ci: op.cin };
  }

  function outSizeOf(op, inSize) {
    if (op.op === 'linear') return op.out;
    if (op.op === 'conv_t') return op.out_height * op.out_width * op.cout;
    return inSize;
  }

  function Model(m, opts) {
    if (!m || m.format !== FORMAT) throw new Error('model.js is not a ' + FORMAT + ' model');
    const weights = float32sOf(m.weights);
    if (weights.length !== m.n_weights) throw new Error('model.js: the weights are truncated');
    this.zDim = m.z_dim;
    this.channels = m.channels || 1;
    this.size = m.size || 28;
    this.layout = m.layout || 'chw';
    this.code = m.code || null; // {kind: 'cluster', k, thresholds} | {kind: 'label', k} | null
    this.k = this.code ? this.code.k : 0;
    this.conditional = !!this.code && this.code.kind === 'label';
    this.thresholds = this.code && this.code.kind === 'cluster' ? Float32Array.from(this.code.thresholds) : null;
    this.ops = m.ops;
    const engine = (opts && opts.engine) || 'auto';
    const module = engine === 'js' ? undefined : wasmKernel();
    if (engine === 'wasm' && !module) throw new Error('this browser has no WebAssembly SIMD');
    this.engine = module ? 'wasm' : 'js';
    this._build(m, weights, module);
  }

  // One arena holds the weights, the tap tables and every activation buffer (16-byte aligned slices, in
  // floats); with WebAssembly it is the kernel's memory, so the kernel reads everything in place.
  Model.prototype._build = function (m, weights, module) {
    let top = 0;
    const alloc = (n) => {
      const at = top;
      top += (n + 3) & ~3;
      return at;
    };
    const wBase = alloc(weights.length);
    let size = this.zDim + this.k, x = alloc(size);
    this.input = x;
    const plan = [];
    for (const op of this.ops) {
      const step = { op, x, inSize: size, outSize: outSizeOf(op, size) };
      if (op.op === 'linear' || op.op === 'conv_t') {
        step.tap = tapsOf(op);
        step.taps = alloc(step.tap.taps.length);
        step.start = alloc(step.tap.start.length);
      }
      step.y = alloc(step.outSize);
      plan.push(step);
      size = step.outSize;
      x = step.y;
    }
    this.outSize = this.channels * this.size * this.size;
    if (size !== this.outSize) throw new Error('model.js: the generator ends in ' + size + ' values, not ' + this.outSize);
    this.output = x;
    let buffer;
    if (module) {
      const instance = new WebAssembly.Instance(module, {});
      const mem = instance.exports.mem, pages = Math.ceil((4 * top) / 65536) - mem.buffer.byteLength / 65536;
      if (pages > 0) mem.grow(pages);
      buffer = mem.buffer;
      this.kernel = instance.exports.conv;
    } else buffer = new ArrayBuffer(4 * top);
    this.F = new Float32Array(buffer);
    this.I = new Int32Array(buffer);
    this.F.set(weights, wBase);
    this.steps = plan.map((step) => {
      if (step.tap) {
        this.I.set(step.tap.taps, step.taps);
        this.I.set(step.tap.start, step.start);
      }
      const make = this['_' + step.op.op];
      if (!make) throw new Error('model.js: unknown op ' + step.op.op);
      return make.call(this, step.op, step, wBase);
    });
  };

  Model.prototype._linear = function (op, s, wBase) {
    const F = this.F, I = this.I, t = s.tap, w = wBase + op.weight, b = wBase + op.bias;
    const expected = op.op === 'linear' ? op.in : op.height * op.width * op.cin;
    if (expected !== s.inSize) throw new Error('model.js: ' + op.op + ' reads ' + expected + ' values, not ' + s.inSize);
    if (this.engine === 'wasm') {
      const conv = this.kernel;
      return () => conv(4 * s.x, 4 * w, 4 * b, 4 * s.y, 4 * s.taps, 4 * s.start, t.npix, t.co, t.ci);
    }
    return () => jsConv(F, I, s.x, w, b, s.y, s.taps, s.start, t.npix, t.co, t.ci);
  };
  Model.prototype._conv_t = Model.prototype._linear;

  Model.prototype._norm = function (op, s, wBase) {
    const F = this.F, n = s.inSize, x = s.x, y = s.y, c = op.c, eps = op.eps;
    const g = wBase + op.gamma, b = wBase + op.beta;
    return () => {
      let mean = 0;
      for (let j = 0; j < n; j++) mean += F[x + j];
      mean /= n;
      let variance = 0;
      for (let j = 0; j < n; j++) variance += (F[x + j] - mean) ** 2;
      const r = 1 / Math.sqrt(variance / n + eps);
      for (let j = 0; j < n; j++) F[y + j] = (F[x + j] - mean) * r * F[g + (j % c)] + F[b + (j % c)];
    };
  };

  Model.prototype._act = function (op, s) {
    const make = ACTIVATIONS[op.fn];
    if (!make) throw new Error('model.js: unknown activation ' + op.fn);
    const f = make(op), F = this.F, n = s.inSize, x = s.x, y = s.y;
    return () => {
      for (let j = 0; j < n; j++) F[y + j] = f(F[x + j]);
    };
  };

  /** The one-hot code G is given for row i of z: its cluster (z_0 against the thresholds, in float32, as
   * ClusterG.clusters_of) or its digit `label`; null for a generator without one. */
  Model.prototype.codeOf = function (z, i, label) {
    if (!this.code) return null;
    const code = new Float32Array(this.k);
    if (this.thresholds) {
      const z0 = Math.fround(z[i * this.zDim]);
      let c = 0;
      for (const t of this.thresholds) if (z0 > t) c++;
      code[c] = 1;
    } else {
      if (!(label >= 0 && label < this.k)) throw new Error('a conditional generator needs a digit 0-9');
      code[label] = 1;
    }
    return code;
  };

  /** n images from z (n * zDim numbers, rounded to float32 as the Python side does). opts.labels: a digit
   * per image (conditional G; default 0, 1, ..., 9, 0, ... as mnistgan's), opts.codes: n * k code values
   * instead of the one-hot ones (interpolation between two codes). */
  Model.prototype.generate = function (z, n, opts) {
    const d = this.zDim, k = this.k, F = this.F, pixels = this.outSize, out = new Float32Array(n * pixels);
    if (z.length !== n * d) throw new Error('z must hold n * z_dim = ' + n * d + ' numbers, not ' + z.length);
    const labels = opts && opts.labels, codes = opts && opts.codes;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) F[this.input + j] = z[i * d + j];
      if (k) {
        const code = codes ? codes.subarray(i * k, i * k + k) : this.codeOf(z, i, labels ? labels[i] : i % 10);
        F.set(code, this.input + d);
      }
      for (const run of this.steps) run();
      this._unitInterval(out, i * pixels);
    }
    return out;
  };

  // tanh's [-1, 1] -> [0, 1] in float32 and clamped, as models.layers.to_unit_interval; channels-last
  // output (a DCGAN's) goes back to PyTorch's (channels, 28, 28) order
  Model.prototype._unitInterval = function (out, at) {
    const F = this.F, o = this.output, C = this.channels, hw = this.size * this.size;
    const hwc = this.layout === 'hwc';
    for (let j = 0; j < C * hw; j++) {
      const src = hwc ? (j % hw) * C + Math.floor(j / hw) : j;
      const v = Math.fround(Math.fround(F[o + src] + 1) * 0.5);
      out[at + j] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  };

  // ------------------------------------------------------------ numpy's legacy RandomState(seed).normal

  // MT19937 seeded as numpy's RandomState(int) (init_genrand)
  function MersenneTwister(seed) {
    const mt = new Uint32Array(624);
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.mt = mt;
    this.i = 624;
    this.spare = null;
  }
  MersenneTwister.prototype.uint32 = function () {
    const mt = this.mt;
    if (this.i >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k] & 0x80000000) | (mt[(k + 1) % 624] & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.i = 0;
    }
    let y = mt[this.i++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  };
  // numpy's legacy double: 53 random bits from two draws
  MersenneTwister.prototype.double = function () {
    const a = this.uint32() >>> 5, b = this.uint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  };
  // numpy's legacy_gauss: the polar Box-Muller method, which keeps the second value for the next call
  MersenneTwister.prototype.normal = function () {
    if (this.spare !== null) {
      const g = this.spare;
      this.spare = null;
      return g;
    }
    let x1, x2, r2;
    do {
      x1 = 2 * this.double() - 1;
      x2 = 2 * this.double() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.spare = f * x1;
    return f * x2;
  };

  /** `np.random.RandomState(seed).normal(size=[n, zDim])`, the noise of `mnistgan generate --seed`. */
  function courseNoise(n, zDim, seed) {
    if (!(Number.isInteger(seed) && seed >= 0 && seed <= 4294967295)) throw new Error('seed must be 0 to 4294967295');
    const rng = new MersenneTwister(seed), z = new Float64Array(n * zDim);
    for (let i = 0; i < z.length; i++) z[i] = rng.normal();
    return z;
  }

  /** generator/interpolate.py's slerp for one t: the great circle from a to b (norms interpolated
   * linearly); the straight line where a or b is 0 or they are (anti)parallel. */
  function slerp(a, b, t) {
    let na = 0, nb = 0, dot = 0;
    for (let i = 0; i < a.length; i++) {
      na += a[i] * a[i];
      nb += b[i] * b[i];
      dot += a[i] * b[i];
    }
    na = Math.sqrt(na);
    nb = Math.sqrt(nb);
    const out = new Float64Array(a.length);
    let wa = 1 - t, wb = t;
    if (na > 0 && nb > 0) {
      const omega = Math.acos(Math.min(1, Math.max(-1, dot / (na * nb)))), s = Math.sin(omega);
      if (s >= 1e-6) {
        wa = Math.sin((1 - t) * omega) / s;
        wb = Math.sin(t * omega) / s;
      }
    }
    for (let i = 0; i < a.length; i++) out[i] = wa * a[i] + wb * b[i];
    return out;
  }

  global.MnistganWeb = { load: (m, opts) => new Model(m, opts), courseNoise, slerp, bytesOf, float32sOf, FORMAT };
})(typeof window !== 'undefined' ? window : globalThis);
