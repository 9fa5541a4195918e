#!/usr/bin/env bash
# ferry's WebGPU training speed on a lent GPU machine (the `device` tool): prepared here, run there.
#
#   bash bench/device/train-webgpu.sh prepare      # here: builds dist/device-webgpu (~32 MB, ignored by git)
#                                                  # (the tree that travels must stay under 64 MiB with it)
#   device run: command 'bash bench/device/train-webgpu.sh', carry ['dist/device-webgpu'], timeout_s 420
#
# The device machine has no npm and reaches no network, so the prepared folder carries all it
# needs: Node (xz), bench/train.ts bundled by esbuild, the webgpu package's Linux binary (Dawn),
# tfjs's wasm files, tinyshakespeare and Debian's Vulkan loader (unpacked there only if missing).
# It prints the GPU, the adapter Dawn offers, then one JSON line per run (bench/train.ts
# --step-time: the median ms of the trainer's steps): nanogpt-cpu and the issue's LSTM on webgpu,
# the same on wasm for the ratio, and auto (which must pick webgpu on a real GPU). About 2 minutes
# on a GPU, at most 6.5 (each run has its own time limit); each run's log and
# all JSON lines (train-webgpu.jsonl) land in $OUT.
# STEPS=2 shortens every run, to smoke-test the script here.
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=dist/device-webgpu
steps=${STEPS:-30}
out=${OUT:-/tmp}

if [[ "${1:-}" == prepare ]]; then
  rm -rf "$kit.tmp" && mkdir -p "$kit.tmp/node_modules/webgpu/dist/linux-x64" "$kit.tmp/debs"
  npx esbuild bench/train.ts --bundle --platform=node --format=esm --target=node20 --outfile="$kit.tmp/train.mjs" \
    --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu --log-level=warning \
    "--banner:js=import { createRequire as __ferryRequire } from 'node:module'; import { fileURLToPath as __ferryPath } from 'node:url'; const require = __ferryRequire(import.meta.url); const __dirname = __ferryPath(new URL('.', import.meta.url));"
  cp node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm "$kit.tmp/"
  cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$kit.tmp/node_modules/webgpu/"
  xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node >"$kit.tmp/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  cp ../shared/data/tinyshakespeare.txt "$kit.tmp/"
  (cd "$kit.tmp/debs" && apt-get download -q libvulkan1)
  xz -T0 -6 -c "$(command -v node)" >"$kit.tmp/node.xz"
  xz -T0 -6 "$kit.tmp/train.mjs"
  rm -rf "$kit" && mv "$kit.tmp" "$kit"
  du -sh "$kit"
  exit 0
fi

[[ -f "$kit/train.mjs.xz" ]] || { echo "no $kit: run 'bash bench/device/train-webgpu.sh prepare' here first and carry $kit" >&2; exit 2; }

if command -v nvidia-smi >/dev/null && ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then # Dawn reaches the GPU through the Vulkan loader
  for deb in "$kit"/debs/*.deb; do dpkg -x "$deb" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [[ -z "${VK_DRIVER_FILES:-}" && -f "$nvidia_icd" ]] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$nvidia_icd
fi

unxz() { python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; }
unxz "$kit/train.mjs.xz" "$kit/train.mjs"
unxz "$kit/node_modules/webgpu/dist/linux-x64/dawn.node.xz" "$kit/node_modules/webgpu/dist/linux-x64/dawn.node"
node=$(command -v node || true)
if [[ -z "$node" ]] || ! "$node" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  unxz "$kit/node.xz" /tmp/ferry-node
  chmod +x /tmp/ferry-node
  node=/tmp/ferry-node
fi
echo "node $("$node" --version); VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"

# Every adapter Dawn offers, with the limits tfjs's kernels depend on.
"$node" --input-type=module -e '
  const { create } = await import(process.argv[1]);
  process.env.EGL_PLATFORM ??= "surfaceless";
  for (const [backend, options] of [["vulkan", {}], ["opengl", { featureLevel: "compatibility" }]]) {
    const adapter = await create([`backend=${backend}`]).requestAdapter({ powerPreference: "high-performance", ...options });
    const info = adapter && Object.fromEntries(["vendor", "architecture", "device", "description"].map((key) => [key, adapter.info[key]]));
    const limits = adapter && Object.fromEntries(["maxStorageBuffersPerShaderStage", "maxComputeWorkgroupStorageSize", "maxStorageBufferBindingSize", "maxBufferSize"].map((key) => [key, adapter.limits[key]]));
    console.log(`adapter ${backend}: ${JSON.stringify(adapter ? { info, limits } : null)}`);
  }
  process.exit(0);
' "$PWD/$kit/node_modules/webgpu/index.js" 2>&1 | grep -v '^$' || true

bench() { # seconds allowed, label, then bench/train.ts options
  local seconds=$1 label=$2; shift 2
  echo "== $label"
  timeout "$seconds" "$node" "$kit/train.mjs" --corpus "$kit/tinyshakespeare.txt" --step-time "$@" 2>"$out/$label.log" | tee -a "$out/train-webgpu.jsonl" \
    || { echo "$label failed (exit $?); its log ends:"; tail -5 "$out/$label.log"; }
  grep -m1 '^backend:' "$out/$label.log" || true
}
short=$(( steps < 10 ? steps : 10 ))
bench 90 nanogpt-webgpu --backend webgpu --steps "$steps"
bench 90 lstm-webgpu --backend webgpu --preset lstm-char --layers 1 --batch 32 --steps "$steps"
bench 60 nanogpt-wasm --backend wasm --steps "$short"
bench 60 lstm-wasm --backend wasm --preset lstm-char --layers 1 --batch 32 --steps "$short"
bench 60 nanogpt-auto --backend auto --steps "$short"
