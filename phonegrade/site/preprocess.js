// The Python path's preprocessing, in plain JavaScript: phonegrade.transforms.load_photo, then the model's eval
// transform (resize the whole photo to a square with antialiasing, scale to [0, 1], normalise). Probabilities
// agree with PhoneGradeClassifier.predict only when every step does what the Python one does, so each step
// names the Python code it follows.

// load_image: EXIF orientation applied, RGB. Browsers apply the orientation when asked to.
export async function decodePhoto(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", premultiplyAlpha: "none",
                                                 colorSpaceConversion: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
  const rgb = new Float32Array(bitmap.width * bitmap.height * 3);
  for (let i = 0, j = 0; i < data.length; i += 4, j += 3) {
    rgb[j] = data[i]; rgb[j + 1] = data[i + 1]; rgb[j + 2] = data[i + 2];
  }
  bitmap.close();
  return { width: canvas.width, height: canvas.height, rgb };
}

// JPEG draft decoding (Pillow's `draft`, which load_image asks for when a JPEG is large) and Image.reduce
// (transforms.shrink_large), both box averages over whole factors: the photo keeps a short side of at least
// 2 × the model input (transforms.decode_side).
export function shrinkLarge(photo, imageSize, isJpeg) {
  const minSide = 2 * imageSize;
  let scale = 1;
  if (isJpeg) {
    while (scale < 8 && Math.ceil(photo.width / (scale * 2)) >= minSide &&
           Math.ceil(photo.height / (scale * 2)) >= minSide) scale *= 2;
  }
  let shrunk = scale > 1 ? boxReduce(photo, scale) : photo;
  const factor = Math.floor(Math.min(shrunk.width, shrunk.height) / minSide);
  if (factor >= 2) shrunk = boxReduce(shrunk, factor);
  return shrunk;
}

// Image.reduce: the mean of each factor × factor box; boxes at the right and bottom edges may be smaller.
function boxReduce(photo, factor) {
  const width = Math.ceil(photo.width / factor), height = Math.ceil(photo.height / factor);
  const out = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const y0 = y * factor, y1 = Math.min(y0 + factor, photo.height);
    for (let x = 0; x < width; x++) {
      const x0 = x * factor, x1 = Math.min(x0 + factor, photo.width);
      let r = 0, g = 0, b = 0;
      for (let yy = y0; yy < y1; yy++) {
        for (let xx = x0; xx < x1; xx++) {
          const k = (yy * photo.width + xx) * 3;
          r += photo.rgb[k]; g += photo.rgb[k + 1]; b += photo.rgb[k + 2];
        }
      }
      const n = (y1 - y0) * (x1 - x0), o = (y * width + x) * 3;
      out[o] = Math.round(r / n); out[o + 1] = Math.round(g / n); out[o + 2] = Math.round(b / n);
    }
  }
  return { width, height, rgb: out };
}

const FILTERS = {
  // PIL's (and torch's antialiased) filters: bilinear is a triangle, bicubic Keys' cubic with a = -0.5.
  bilinear: { support: 1, weight: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; } },
  bicubic: { support: 2, weight: (x) => {
    const a = -0.5; x = Math.abs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  } },
};

// One antialiased pass along one axis (the filter is stretched by the scale when shrinking, as in PIL and
// torch's antialiased interpolation); `round`: back to whole values in 0-255, as the uint8 result is.
function resamplePass(src, srcLength, dstLength, lines, stride, step, filter, round) {
  const scale = srcLength / dstLength, stretch = Math.max(scale, 1), support = filter.support * stretch;
  const out = new Float32Array(dstLength * lines * 3);
  for (let i = 0; i < dstLength; i++) {
    const centre = (i + 0.5) * scale;
    const first = Math.max(0, Math.floor(centre - support + 0.5)), last = Math.min(srcLength, Math.floor(centre + support + 0.5));
    const weights = [];
    let total = 0;
    for (let j = first; j < last; j++) {
      const w = filter.weight((j - centre + 0.5) / stretch);
      weights.push(w); total += w;
    }
    for (let line = 0; line < lines; line++) {
      let r = 0, g = 0, b = 0;
      for (let j = first; j < last; j++) {
        const w = weights[j - first] / total, k = (line * stride + j * step) * 3;
        r += src[k] * w; g += src[k + 1] * w; b += src[k + 2] * w;
      }
      const o = (step === 1 ? line * dstLength + i : i * lines + line) * 3;
      out[o] = round ? Math.min(255, Math.max(0, Math.round(r))) : r;
      out[o + 1] = round ? Math.min(255, Math.max(0, Math.round(g))) : g;
      out[o + 2] = round ? Math.min(255, Math.max(0, Math.round(b))) : b;
    }
  }
  return out;
}

// A separable antialiased resize: rows first, then columns (as PIL and torch do). `roundBetween`: round the
// intermediate to uint8 (PIL's Image.resize does; torch's float resize of a uint8 photo does not).
function resize(photo, width, height, filter, roundBetween) {
  const wide = resamplePass(photo.rgb, photo.width, width, photo.height, photo.width, 1, filter, roundBetween);
  return { width, height, rgb: resamplePass(wide, photo.height, height, width, 1, width, filter, true) };
}

// T.Resize((size, size), antialias=True) of the whole photo (crop_pct 1), then ToDtype(float, scale) and Normalize:
// a 1 × 3 × size × size tensor in NCHW order.
export function modelInput(photo, pre) {
  const size = pre.image_size, filter = FILTERS[pre.interpolation] || FILTERS.bilinear;
  const square = resize(photo, size, size, filter, false).rgb;  // row-major, uint8 values
  const pixels = new Float32Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const k = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) {
        pixels[c * size * size + y * size + x] = (square[k + c] / 255 - pre.mean[c]) / pre.std[c];
      }
    }
  }
  return pixels;
}

// phonegrade.quality.measure_quality, on the decoded photo: the same measures on the same analysis copy, and the
// thresholds the Python code uses (site.json `quality`).
export function measureQuality(photo, limits) {
  const scale = limits.analysis_side / Math.max(photo.width, photo.height);
  let small = photo;
  if (scale < 1) {  // analysis_copy: Image.resize(BILINEAR), which averages when shrinking
    small = resize(photo, Math.max(1, Math.round(photo.width * scale)), Math.max(1, Math.round(photo.height * scale)),
                   FILTERS.bilinear, true);
  }
  const { width, height, rgb } = small, n = width * height;
  // Image.convert("L"): ITU-R 601-2 luma in PIL's fixed point.
  const grey = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    grey[i] = (rgb[3 * i] * 19595 + rgb[3 * i + 1] * 38470 + rgb[3 * i + 2] * 7471 + 0x8000) >> 16;
  }
  let sharpness = 0;
  if (Math.min(width, height) >= 3) {  // variance of the 4-neighbour Laplacian
    let sum = 0, sumSquares = 0, count = 0;
    for (let y = 1; y < height - 1; y++) {
      for (let x = 1; x < width - 1; x++) {
        const i = y * width + x;
        const v = grey[i - 1] + grey[i + 1] + grey[i - width] + grey[i + width] - 4 * grey[i];
        sum += v; sumSquares += v * v; count++;
      }
    }
    sharpness = sumSquares / count - (sum / count) ** 2;
  }
  let blown = 0, middle = 0;  // glare: blown-out share of the central half across and down
  const top = Math.floor(height / 4), left = Math.floor(width / 4);
  for (let y = top; y < height - top; y++) {
    for (let x = left; x < width - left; x++) {
      const k = 3 * (y * width + x);
      middle++;
      if (Math.max(rgb[k], rgb[k + 1], rgb[k + 2]) >= limits.blown_out_level) blown++;
    }
  }
  const glare = middle ? blown / middle : 0;
  const sorted = Array.from(grey).sort((a, b) => a - b);  // numpy's percentile: linear between ranks
  const rank = 0.99 * (n - 1), low = Math.floor(rank);
  const p99 = sorted[low] + (sorted[Math.min(low + 1, n - 1)] - sorted[low]) * (rank - low);
  const darkness = 1 - p99 / 255, shortSide = Math.min(photo.width, photo.height);
  const size = `${photo.width}×${photo.height}`;
  const reasons = [];
  if (darkness > limits.black_darkness) {
    reasons.push("The photo is almost entirely black: there is nothing to grade. Turn on a light and retake it.");
  }
  if (shortSide < limits.min_gradable_side) {
    reasons.push(`The photo is only ${size} pixels, too small to grade: upload the original photo, at least ` +
                 `${limits.min_short_side} pixels on its short side.`);
  }
  if (reasons.length) return { sharpness, glare, darkness, shortSide, warnings: reasons, gradable: false };
  const warnings = [];
  if (darkness > limits.max_darkness) warnings.push("The photo is too dark: add light or move somewhere brighter.");
  else if (sharpness < limits.min_sharpness) {
    warnings.push("The photo is blurry: hold the phone still and tap the screen to focus.");
  }
  if (glare > limits.max_glare) {
    warnings.push("Much of the photo is washed out by glare or over-exposure: move out of direct light or tilt " +
                  "the phone away from reflections.");
  }
  if (shortSide < limits.min_short_side) {
    warnings.push(`The photo is small (${size} pixels): grades are less reliable; take it closer or upload the ` +
                  "original photo.");
  }
  return { sharpness, glare, darkness, shortSide, warnings, gradable: true };
}
