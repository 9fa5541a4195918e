/** Writes an ONNX package dir all at once: a temp dir beside it, renamed into place. */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { FerryError } from '../errors.ts';

/** File contents: text, bytes, or a list of byte chunks written one after another. */
export type PackageFiles = Record<string, Uint8Array | Uint8Array[] | string>;

async function writeChunks(file: string, data: Uint8Array | Uint8Array[] | string): Promise<void> {
  const handle = await open(file, 'w');
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) await handle.writeFile(data);
    else for (const chunk of data) await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

/**
 * Undoes what an export killed mid-write (kill -9, power loss) left beside the package: its temp
 * dir goes, and a package it had moved aside to swap in the new one comes back. Only dirs of
 * processes no longer running are touched.
 */
async function recoverKilledWrite(parent: string, base: string): Promise<void> {
  const prefix = `.${base}.tmp-`;
  const leftovers = (await readdir(parent)).filter((name) => name.startsWith(prefix) && !isRunning(Number(name.slice(prefix.length).split('-')[0])));
  const targetMissing = !(await stat(path.join(parent, base)).then(() => true, () => false));
  for (const name of leftovers.sort()) {
    if (targetMissing && name.endsWith('.old')) await rename(path.join(parent, name), path.join(parent, base));
    else await rm(path.join(parent, name), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function writePackageDir(outDir: string, files: PackageFiles): Promise<void> {
  const target = path.resolve(outDir);
  const parent = path.dirname(target);
  const existing = await stat(target).catch(() => undefined);
  if (existing && !existing.isDirectory()) {
    throw new FerryError('export_out_not_dir', `${outDir} exists and is not a directory`, { hint: 'Choose another --out path.' });
  }
  let temp: string;
  try {
    await mkdir(parent, { recursive: true });
    await recoverKilledWrite(parent, path.basename(target));
    // mkdir, not mkdtemp: the package dir gets the user's umask (mkdtemp's 0700 would survive the rename).
    temp = path.join(parent, `.${path.basename(target)}.tmp-${process.pid}-${randomUUID()}`);
    await mkdir(temp);
  } catch (error) {
    throw new FerryError('export_out_not_writable', `cannot write the package dir ${outDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: 'Choose an --out path in a directory you can write to.',
      cause: error,
    });
  }
  try {
    for (const [name, data] of Object.entries(files)) {
      const file = path.join(temp, name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeChunks(file, data);
    }
    if (existing) {
      // Swap: the old package moves aside, the new one takes its name, then the old one goes.
      const old = `${temp}.old`;
      await rename(target, old);
      await rename(temp, target);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(temp, target);
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw new FerryError('export_out_not_writable', `cannot write the package dir ${outDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
      hint: 'Check free disk space and permissions of the --out path.',
      cause: error,
    });
  }
}
