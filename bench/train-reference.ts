/**
 * Runs the PyTorch reference scripts (bench/reference/*.py) as child processes, for benchmarks
 * that compare ferry with PyTorch on the same machine in the same run. They need Debian's
 * python3-torch in the system Python (not a pyenv/venv python on PATH).
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const DEFAULT_PYTHON = '/usr/bin/python3';

const INSTALL_HINT = 'Install the reference with `apt-get install -y python3-torch libopenblas0-pthread` '
  + '(Debian\'s torch; OpenBLAS makes it the fair comparison, the default reference BLAS is several times slower), '
  + 'or point --python at a python3 that has torch.';

export type BlasReport = { kind: string; loaded: string[]; alternative: string | null; threads: number | null; fair: boolean };

/** Throws with the install command when `python` cannot import torch. */
export async function checkPytorch(python: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(python, ['-c', 'import torch; print(torch.__version__)']);
    return stdout.trim();
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT'
      ? `${python} does not exist`
      : `${python} cannot import torch (${String((error as { stderr?: string }).stderr ?? error).trim().split('\n').at(-1)})`;
    throw new Error(`--reference needs PyTorch: ${why}.\n  ${INSTALL_HINT}`);
  }
}

/**
 * Runs bench/reference/`script` with `args`; its progress lines go to our stderr, and the last
 * line of its stdout is the JSON result. `threads` caps both torch's threads and OpenBLAS's own
 * pool (which torch's setting does not reach); undefined keeps their defaults.
 */
export function runPytorch<T>(python: string, script: string, args: string[], threads?: number): Promise<T> {
  const path = join(import.meta.dirname, 'reference', script);
  const env = threads === undefined ? process.env : { ...process.env, OPENBLAS_NUM_THREADS: String(threads) };
  const threadArgs = threads === undefined ? [] : ['--threads', String(threads)];
  return new Promise((resolveRun, reject) => {
    const child = spawn(python, [path, ...args, ...threadArgs], { stdio: ['ignore', 'pipe', 'inherit'], env });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${script} exited with ${code}`));
      try {
        resolveRun(JSON.parse(stdout.trim().split('\n').at(-1)!) as T);
      } catch {
        reject(new Error(`${script} printed no JSON result: ${stdout.slice(-500)}`));
      }
    });
  });
}

/** A warning line when PyTorch did not run on an optimised BLAS (the comparison would flatter ferry). */
export function blasWarning(blas: BlasReport): string | null {
  return blas.fair
    ? null
    : `warning: PyTorch ran on the ${blas.kind} BLAS (${blas.loaded.join(', ') || 'none found'}): not a fair comparison; `
      + 'install libopenblas0-pthread and select it with `update-alternatives --config libblas.so.3-x86_64-linux-gnu`';
}
