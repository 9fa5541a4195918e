// Writes the browser client + playground bundle to dist/browser/playground.js (and reports its
// size). `ferry serve` builds the same bundle in memory when this file is absent.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { bundleBrowserClient } from '../src/serve/playground/bundle.ts';

export async function buildBrowser(outDir = 'dist/browser'): Promise<{ file: string; bytes: number; gzipBytes: number }> {
  const code = await bundleBrowserClient();
  await mkdir(outDir, { recursive: true });
  const file = path.join(outDir, 'playground.js');
  await writeFile(`${file}.tmp`, code);
  await rename(`${file}.tmp`, file);
  return { file, bytes: Buffer.byteLength(code), gzipBytes: gzipSync(code).byteLength };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { file, bytes, gzipBytes } = await buildBrowser(process.argv[2]);
  console.log(`${file}: ${(bytes / 1024).toFixed(1)} KiB (${(gzipBytes / 1024).toFixed(1)} KiB gzip)`);
}
