// phonegrade in the browser: the Gradio page's two-stage grade on the visitor's device. The side model first; a
// scratch grade only for a front; "does not look like a phone" for none. Nothing leaves the device unless the
// visitor reports a wrong grade and ticks the consent box (and the site was built with a demo URL).
import { decodePhoto, measureQuality, modelInput, shrinkLarge } from "./preprocess.js";

const SIDE_WORDS = { front: "Front view", back: "Back view", none: "Not a phone" };
const SCRATCH_WORDS = { major_scratch: "major scratches", minor_scratch: "minor scratches", no_scratch: "no scratches" };
const $ = (id) => document.getElementById(id);
const percent = (p) => `${Math.round(p * 100)} %`;
const top = (probabilities) => Object.keys(probabilities).reduce((a, b) => (probabilities[a] >= probabilities[b] ? a : b));

let site, sessions, lastPhoto = null;

async function loadModels() {
  site = await (await fetch("site.json")).json();
  ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which a plain static host does not give
  // An absolute URL: onnxruntime-web imports its WebAssembly loader from there, and a relative path would be
  // taken for a package name.
  if (site.ort_wasm_path) ort.env.wasm.wasmPaths = new URL(site.ort_wasm_path, location.href).href;
  sessions = {};
  for (const task of ["side", "scratch"]) {
    sessions[task] = await ort.InferenceSession.create(site.models[task].file, { executionProviders: ["wasm"] });
  }
}

async function probabilities(task, photo) {
  const model = site.models[task], size = model.preprocessing.image_size;
  const input = new ort.Tensor("float32", modelInput(photo[task], model.preprocessing), [1, 3, size, size]);
  const output = await sessions[task].run({ [model.input]: input });
  const logits = Array.from(output[model.output].data);
  const peak = Math.max(...logits), exps = logits.map((v) => Math.exp(v - peak));
  const total = exps.reduce((a, b) => a + b, 0);
  return Object.fromEntries(model.labels.map((label, i) => [label, exps[i] / total]));
}

function unsure(task, probabilities) {
  const [first, second] = Object.keys(probabilities).sort((a, b) => probabilities[b] - probabilities[a]);
  if (probabilities[first] - probabilities[second] >= site.ask_margin) return "";
  const words = task === "scratch" ? SCRATCH_WORDS : Object.fromEntries(
    Object.entries(SIDE_WORDS).map(([k, v]) => [k, v.toLowerCase()]));
  return `The ${task} model is unsure between ${words[first]} (${percent(probabilities[first])}) and ` +
         `${words[second]} (${percent(probabilities[second])}).`;
}

function bars(element, probabilities) {
  element.replaceChildren(...Object.entries(probabilities).sort((a, b) => b[1] - a[1]).map(([label, p]) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = `<span></span><meter min="0" max="1"></meter><span></span>`;
    row.children[0].textContent = label;
    row.children[1].value = p;
    row.children[2].textContent = percent(p);
    return row;
  }));
}

async function grade(file) {
  $("summary").textContent = "Grading…";
  $("ask").textContent = "";
  const decoded = await decodePhoto(file);
  const quality = measureQuality(decoded, site.quality);
  window.phonegradeQuality = quality;
  $("quality").textContent = quality.warnings.length
    ? `${quality.gradable ? "Retake hint" : "Too poor to grade"}: ${quality.warnings.join(" ")}` : "";
  const isJpeg = file.type === "image/jpeg";
  // Each model starts from the photo shrunk for its own input size, as load_photo does in Python.
  const photo = { side: shrinkLarge(decoded, site.models.side.preprocessing.image_size, isJpeg),
                  scratch: shrinkLarge(decoded, site.models.scratch.preprocessing.image_size, isJpeg) };
  const side = await probabilities("side", photo);
  const sideLabel = top(side);
  // As on the Gradio page: a photo too poor to grade gets the side model's probabilities and nothing else.
  const scratch = sideLabel === "front" && quality.gradable ? await probabilities("scratch", photo) : null;
  let sentence;
  if (!quality.gradable) sentence = "Cannot grade this photo";
  else if (sideLabel === "none") sentence = `This does not look like a phone (${percent(side.none)})`;
  else if (!scratch) sentence = `${SIDE_WORDS[sideLabel]}, ${percent(side[sideLabel])}`;
  else sentence = `${SIDE_WORDS[sideLabel]} — ${SCRATCH_WORDS[top(scratch)]}, ${percent(scratch[top(scratch)])}`;
  $("summary").textContent = sentence;
  $("note").textContent = !quality.gradable ? "Not graded: the photo is too poor to grade." : sideLabel === "none"
    ? "Not graded: the photo does not look like a phone's front or back. If it shows a phone, please report it below."
    : sideLabel === "back" ? "Scratches not graded: this looks like a phone's back, not its front." : "";
  const reasons = quality.gradable ? [unsure("side", side), scratch ? unsure("scratch", scratch) : ""].filter(Boolean)
    : [];
  $("ask").textContent = reasons.length ? `Not sure about this one. ${reasons.join(" ")} Is the grade right?` : "";
  bars($("side"), side);
  bars($("scratch"), scratch || {});
  lastPhoto = file;
  $("report").hidden = !site.flag_url;
  window.phonegradeResult = { side, scratch };  // for tests and pages embedding this one
}

async function report() {
  if (!lastPhoto || !site.flag_url) return;
  if (!$("consent").checked) {
    $("flag-status").textContent = "Tick the box to send the photo and your correction.";
    return;
  }
  // The Gradio demo's /flag, over its plain HTTP API: upload the photo, call the endpoint, read its answer.
  // A relative flag_url ("/" when the demo serves this site at /web/) is the page's own origin.
  const base = new URL(site.flag_url.replace(/\/?$/, "/"), location.href);
  const form = new FormData();
  form.append("files", lastPhoto, lastPhoto.name || "photo.jpg");
  const upload = await fetch(new URL("gradio_api/upload", base), { method: "POST", body: form });
  if (!upload.ok) throw new Error(`the demo refused the photo (${upload.status})`);
  const file = { path: (await upload.json())[0], meta: { _type: "gradio.FileData" } };
  const call = await fetch(new URL("gradio_api/call/flag", base), { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ data: [file, $("side-fix").value, $("scratch-fix").value, $("comment").value, true, false] }) });
  if (!call.ok) throw new Error(`the demo refused the correction (${call.status})`);
  const answer = await (await fetch(new URL(`gradio_api/call/flag/${(await call.json()).event_id}`, base))).text();
  $("flag-status").textContent = /^event: complete/m.test(answer) ? "Sent, thank you."
    : `The demo did not take the correction: ${answer.split("data: ").pop().trim()}`;
}

$("photo").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) grade(file).catch((err) => { $("summary").textContent = `Cannot grade this photo: ${err.message}`; });
});
$("send").addEventListener("click", () => report().catch((err) => { $("flag-status").textContent = err.message; }));
loadModels().then(() => { $("status").textContent = "Ready: choose or take a photo."; document.body.dataset.ready = "1"; },
                  (err) => { $("status").textContent = `The models did not load: ${err.message}`; });
