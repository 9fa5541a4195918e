import { readFile } from 'node:fs/promises';
import { createDecoder, keepsCacheItself, type Decoder } from '../package/decoder.ts';
import { createLanes } from './lanes.ts';
import { isPresentKeyValue, type Precision } from '../package/index.ts';
import { loadPackage, type ModelPackage } from './package.ts';
import { keepOutputs } from './prune-outputs.ts';
import type { Runtime } from './runtime/types.ts';
import { createScheduler, type Scheduler } from './scheduler.ts';
import { slideModeOf } from '../package/sliding-window.ts';
import type { Tokenizer } from '../tokenizer/index.ts';

/** Everything the HTTP layer and `ferry generate` need to know about one loaded model. */
export interface ServedModel {
  readonly id: string;
  readonly dir: string;
  readonly arch: string;
  /** Where it runs, e.g. `onnxruntime-node cpu`. */
  readonly provider: string;
  readonly contextLength: number | null;
  readonly tokenizer: Tokenizer;
  readonly defaults: ModelPackage['manifest']['generation'];
  readonly scheduler: Scheduler;
  /** Unix seconds, for /v1/models. */
  readonly created: number;
  close(): Promise<void>;
}

export interface OpenModelOptions {
  runtime: Runtime;
  maxBatch: number;
  maxQueue: number;
  precision?: Precision;
  /** Served under this id instead of the manifest's name. */
  id?: string;
  /** Intra-op threads for the session (default: the runtime's choice). */
  threads?: number;
  /**
   * Batches decoded in turn over the one session (createLanes): with the session in a worker
   * thread, one batch's sampling and streaming overlaps the other's run. `maxBatch` and
   * `maxQueue` are split between them. Default 1.
   */
  lanes?: number;
  /** Tokens per part of a long prompt's prefill (SchedulerOptions.prefillChunk). */
  prefillChunk?: number;
}

/** Loads a package, opens its session, and warms it up with one prefill and one batched step. */
export async function openModel(dir: string, options: OpenModelOptions): Promise<ServedModel> {
  const pkg = await loadPackage(dir, { precision: options.precision });
  // Decoders that keep the KV cache themselves never fetch the concatenated K/V: the session goes without them.
  const outputNames = pkg.manifest.outputs.map((output) => output.name);
  const model = keepsCacheItself(pkg.manifest.contextLength, outputNames)
    ? keepOutputs(new Uint8Array(await readFile(pkg.modelPath)), outputNames.filter((name) => !isPresentKeyValue(name)))
    : pkg.modelPath;
  const session = await options.runtime.createSession(model, { cpuOnlyNodes: pkg.manifest.cpuOnlyNodes, intraOpThreads: options.threads });
  const lanes = Math.max(1, Math.min(options.lanes ?? 1, options.maxBatch));
  const schedulers = await Promise.all(Array.from({ length: lanes }, async () => {
    const decoder = createDecoder(session, pkg.manifest.state, pkg.manifest.model.vocabSize, pkg.manifest.contextLength, { ownCache: true, slide: slideModeOf(pkg.manifest.model) });
    await warmUp(decoder);
    return createScheduler(decoder, pkg.tokenizer, { maxBatch: Math.ceil(options.maxBatch / lanes), maxQueue: Math.ceil(options.maxQueue / lanes), prefillChunk: options.prefillChunk });
  }));
  return {
    id: options.id ?? pkg.id,
    dir,
    arch: pkg.manifest.arch,
    provider: session.provider,
    contextLength: pkg.manifest.contextLength,
    tokenizer: pkg.tokenizer,
    defaults: pkg.manifest.generation,
    scheduler: createLanes(schedulers),
    created: Math.floor(Date.now() / 1000),
    close: () => session.release(),
  };
}

async function warmUp(decoder: Decoder): Promise<void> {
  const [a, b] = await decoder.prefill([[0, 0], [0]]);
  await decoder.step([{ state: a!.state, token: 0 }, { state: b!.state, token: 0 }]);
}
