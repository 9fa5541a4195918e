/**
 * The playground page. The import map points the bare onnxruntime-web specifiers at ORT's own
 * ESM bundles (the WASM-only build for WASM: the default build's JSEP WebGPU path runs causal
 * MultiHeadAttention non-causally; docs/ARCHITECTURE.md, "Runtime facts"), so ORT loads its .wasm next to itself.
 */
export function playgroundHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ferry playground</title>
<script type="importmap">
{ "imports": {
  "onnxruntime-web": "/ferry/ort/ort.wasm.bundle.min.mjs",
  "onnxruntime-web/webgpu": "/ferry/ort/ort.webgpu.bundle.min.mjs"
} }
</script>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 16px; color: #222; }
  h1 { font-size: 20px; margin: 0 0 12px; }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin: 0 0 12px; }
  label { display: inline-block; margin: 4px 12px 4px 0; }
  input[type=number] { width: 70px; }
  textarea { width: 100%; height: 70px; font: 13px monospace; box-sizing: border-box; }
  pre#output { white-space: pre-wrap; background: #f6f6f6; border-radius: 6px; padding: 10px; min-height: 120px; font: 13px monospace; }
  button { padding: 6px 14px; margin-right: 8px; }
  #notice { color: #8a4b00; background: #fff4e0; padding: 6px 10px; border-radius: 6px; display: none; }
  #error { color: #a00; background: #fdecec; border: 1px solid #e0a0a0; border-radius: 6px; padding: 6px 10px; margin-top: 8px; white-space: pre-wrap; }
  #error[hidden] { display: none; }
  .row { display: flex; gap: 16px; flex-wrap: wrap; }
  .panel { flex: 1 1 300px; }
  table { border-collapse: collapse; font-size: 12px; }
  td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
  progress { width: 240px; }
</style>
</head>
<body>
<h1>ferry playground</h1>
<fieldset>
  <label>model <select id="model"></select></label>
  <label>device <select id="device"><option value="auto">auto (WebGPU, else WASM)</option><option value="webgpu">WebGPU</option><option value="wasm">WASM</option></select></label>
  <label>precision <select id="precision"><option value="fp32">fp32</option></select></label>
  <label>threads <input id="threads" type="number" min="1" max="16" value="2"></label>
  <span id="status" role="status">loading the model list…</span> <progress id="progress" value="0" max="1" hidden></progress>
</fieldset>
<div id="notice"></div>
<fieldset>
  <textarea id="prompt">ROMEO:</textarea>
  <label>max_tokens <input id="max_tokens" type="number" min="1" value="64" placeholder="model's"></label>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0"></label>
  <label>top_k <input id="top_k" type="number" min="0" value="0"></label>
  <label>top_p <input id="top_p" type="number" min="0.01" max="1" step="0.05" value="1"></label>
  <label>seed <input id="seed" type="number" value="1"></label>
  <label>API key <input id="api_key" type="password" size="12"></label>
  <div>
    <button id="run_browser">Run in this browser</button>
    <button id="run_server">Run on the server</button>
    <span id="speed"></span>
  </div>
  <div id="error" role="alert" hidden></div>
</fieldset>
<pre id="output" aria-live="polite"></pre>
<div class="row">
  <div class="panel"><h3>Training loss</h3><div id="loss">–</div></div>
  <div class="panel"><h3>Export parity</h3><div id="parity">–</div></div>
</div>
<script type="module" src="/ferry/playground.js"></script>
</body>
</html>
`;
}
