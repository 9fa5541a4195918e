/** How a clone installs: onnxruntime-node's CUDA download is skipped the way its install script supports. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

test('npm ci skips the CUDA download through ONNXRUNTIME_NODE_INSTALL, not an .npmrc key npm warns about', () => {
  // An .npmrc `onnxruntime-node-install=skip` made every npm command warn "Unknown project config".
  assert.ok(!existsSync('.npmrc') || !/onnxruntime/.test(readFileSync('.npmrc', 'utf8')), '.npmrc holds no onnxruntime key');
  assert.match(readFileSync('.ci/run', 'utf8'), /^ONNXRUNTIME_NODE_INSTALL=skip npm ci\b/m);
  assert.match(readFileSync('README.md', 'utf8'), /ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
  // The variable is the one the installed onnxruntime-node reads, and "skip" is its value for skipping.
  const installUtils = readFileSync('node_modules/onnxruntime-node/script/install-utils.js', 'utf8');
  assert.match(installUtils, /process\.env\.ONNXRUNTIME_NODE_INSTALL\b/);
  assert.match(installUtils, /case 'skip':\s*return false;/);
});
