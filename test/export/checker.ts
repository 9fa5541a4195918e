/** Runs the official ONNX checker (Debian's python3-onnx) over exported files in one process. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const PYTHON = '/usr/bin/python3';

// onnx 1.12 knows the standard domain up to opset 17: newer files are skipped with a reason.
const SCRIPT = `
import json, sys, onnx
known = onnx.defs.onnx_opset_version()
for path in sys.argv[1:]:
    model = onnx.load(path)
    opset = max(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx'))
    if opset > known:
        print(json.dumps({'path': path, 'skipped': f'opset {opset} is newer than this onnx ({onnx.__version__}, opset {known})'}))
        continue
    try:
        onnx.checker.check_model(model, full_check=True)
        print(json.dumps({'path': path, 'ok': True}))
    except Exception as error:
        print(json.dumps({'path': path, 'error': str(error)[:500]}))
`;

export async function checkModels(files: string[]): Promise<{ checked: number; skipped: number }> {
  const available = existsSync(PYTHON) && (await promisify(execFile)(PYTHON, ['-c', 'import onnx']).then(() => true, () => false));
  if (!available) {
    console.log('# skipped the ONNX checker: /usr/bin/python3 with the onnx module is not installed (apt-get install python3-onnx)');
    return { checked: 0, skipped: files.length };
  }
  const { stdout } = await promisify(execFile)(PYTHON, ['-c', SCRIPT, ...files], { maxBuffer: 1 << 24 });
  const results = stdout.trim().split('\n').map((line) => JSON.parse(line) as { path: string; ok?: boolean; skipped?: string; error?: string });
  assert.equal(results.length, files.length);
  const errors = results.filter((r) => r.error).map((r) => `${r.path}: ${r.error}`);
  assert.deepEqual(errors, []);
  for (const r of results.filter((r) => r.skipped)) console.log(`# ONNX checker skipped ${r.path}: ${r.skipped}`);
  return { checked: results.filter((r) => r.ok).length, skipped: results.filter((r) => r.skipped).length };
}
