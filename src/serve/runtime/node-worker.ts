import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { bufferOf, type NamedTensors, type Session } from '../../package/session.ts';

// onnxruntime-node runs a session synchronously on the calling thread, so a session on the main
// thread stalls every HTTP read and write for the length of each step. Here each session lives
// in its own worker thread: tensors are copied in (moved, when the caller gives them up or lends
// them) and moved back. Plain JS, so that the worker needs no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
ort.env.logLevel = 'fatal';
let session;
parentPort.on('message', async ({ id, type, model, options, feeds, fetch, lend }) => {
  try {
    if (type === 'create') {
      session = await ort.InferenceSession.create(model, options);
      parentPort.postMessage({ id, inputNames: session.inputNames, outputNames: session.outputNames });
    } else if (type === 'run') {
      const inputs = {};
      for (const [name, t] of Object.entries(feeds)) inputs[name] = new ort.Tensor(t.dtype, t.data, t.dims);
      const results = fetch ? await session.run(inputs, fetch) : await session.run(inputs);
      const outputs = {};
      const buffers = new Set();
      for (const [name, t] of Object.entries(results)) {
        outputs[name] = { dtype: t.type, dims: t.dims, data: t.data };
        if (t.type !== 'string') buffers.add(t.data.buffer);
      }
      for (const name of lend || []) {
        outputs[name] = feeds[name];
        if (feeds[name].dtype !== 'string') buffers.add(feeds[name].data.buffer);
      }
      parentPort.postMessage({ id, outputs }, [...buffers]);
    } else if (type === 'release') {
      await session?.release();
      parentPort.postMessage({ id });
    }
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) });
  }
});
`;

interface Reply {
  id: number;
  error?: string;
  inputNames?: string[];
  outputNames?: string[];
  outputs?: NamedTensors;
}

/** Opens an onnxruntime-node session in a worker thread of its own. */
export async function openSessionInWorker(model: string | Uint8Array, options: object, provider: string): Promise<Session> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath: createRequire(import.meta.url).resolve('onnxruntime-node') } });
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  let dead: Error | undefined;
  // Only in-flight calls keep the process alive; an idle session never does.
  worker.unref();

  const failAll = (error: Error) => {
    dead ??= error;
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  worker.on('message', (reply: Reply) => {
    const call = pending.get(reply.id);
    if (!call) return;
    pending.delete(reply.id);
    if (!pending.size) worker.unref();
    if (reply.error !== undefined) call.reject(new Error(reply.error));
    else call.resolve(reply);
  });
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`the onnxruntime worker exited with code ${code}`)));

  const call = (message: object, transfer: ArrayBuffer[] = []): Promise<Reply> => {
    if (dead) return Promise.reject(dead);
    const id = nextId++;
    worker.ref();
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...message, id }, transfer);
    });
  };

  let created: Reply;
  try {
    created = await call({ type: 'create', model, options });
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return {
    provider,
    inputNames: created.inputNames!,
    outputNames: created.outputNames!,
    async run(feeds, options) {
      const moved = options?.giveUpFeeds ? Object.values(feeds) : (options?.lendFeeds ?? []).map((name) => feeds[name]!);
      const transfer = [...new Set(moved.map(bufferOf).filter((buffer) => buffer !== undefined))];
      return (await call({ type: 'run', feeds, fetch: options?.fetch, lend: options?.lendFeeds }, transfer)).outputs!;
    },
    async release() {
      await call({ type: 'release' }).catch(() => {});
      await worker.terminate();
    },
  };
}
