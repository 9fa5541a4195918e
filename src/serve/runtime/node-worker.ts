import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { FerryError } from '../../errors.ts';
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
// Releasing a session, or ending the thread, while a run is in flight aborts the whole process
// (a Napi::Error thrown in onnxruntime's callback into a torn-down environment), so a release
// and a crash wait for the runs they find.
const running = new Set();
let dying = false;
parentPort.on('message', async ({ id, type, model, options, feeds, fetch, lend }) => {
  if (dying) process.exit(70);
  try {
    if (type === 'crash') {
      // A fatal error in this thread during a run: the run in flight, else the next one sent,
      // never answers.
      dying = true;
      if (running.size) {
        await Promise.allSettled([...running]);
        process.exit(70);
      }
    } else if (type === 'create') {
      session = await ort.InferenceSession.create(model, options);
      parentPort.postMessage({ id, inputNames: session.inputNames, outputNames: session.outputNames });
    } else if (type === 'run') {
      if (!session) throw new Error('the session was released');
      const inputs = {};
      for (const [name, t] of Object.entries(feeds)) inputs[name] = new ort.Tensor(t.dtype, t.data, t.dims);
      const run = fetch ? session.run(inputs, fetch) : session.run(inputs);
      running.add(run);
      const results = await run.finally(() => running.delete(run));
      if (dying) return;
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
      const released = session;
      session = undefined;
      await Promise.allSettled([...running]);
      await released?.release();
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

/** A session in a worker thread that can be stopped as a crash would stop it. */
export interface WorkerSession extends Session {
  /**
   * Ends the thread during a run (the one in flight, else the next one sent) without releasing
   * the session or answering that run, as a fatal error in the thread would (for tests). The
   * thread exits once onnxruntime has returned, since terminating a thread mid-run aborts the
   * whole process. Resolves once the thread has exited.
   */
  crash(): Promise<void>;
}

interface Thread {
  worker: Worker;
  call(message: object, transfer?: ArrayBuffer[]): Promise<Reply>;
  created: Reply;
}

/**
 * Opens an onnxruntime-node session in a worker thread of its own. When the thread dies (an
 * uncaught error in it, its heap runs out), the runs on it fail with a 503 that says so and a
 * new thread re-opens the session at once, so that the model serves again by itself. A model
 * that cannot be opened at all throws here, as before.
 */
export async function openSessionInWorker(model: string | Uint8Array, options: object, provider: string): Promise<WorkerSession> {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  let released = false;
  let current: Promise<Thread> = startThread();
  const first = await current;

  function startThread(): Promise<Thread> {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath } });
    const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
    let nextId = 0;
    let dead: Error | undefined;
    // A thread replaces a dead one only once it opened the session (a model that cannot be opened does not loop).
    let ready = false;
    // Only in-flight calls keep the process alive; an idle session never does.
    worker.unref();

    const die = (reason: string) => {
      if (dead) return;
      dead = new FerryError('worker_died', `the onnxruntime worker of this model (${provider}) stopped: ${reason}`, {
        hint: 'the requests it was running failed; the session is re-opened in a new worker, so retry',
        status: 503,
      });
      for (const { reject } of pending.values()) reject(dead);
      pending.clear();
      if (!released && ready) current = startThread();
    };
    worker.on('message', (reply: Reply) => {
      const call = pending.get(reply.id);
      if (!call) return;
      pending.delete(reply.id);
      if (!pending.size) worker.unref();
      if (reply.error !== undefined) call.reject(new FerryError('model_failed', `onnxruntime could not run this model (${provider}): ${reply.error.split('\n')[0]}`, { status: 503 }));
      else call.resolve(reply);
    });
    worker.on('error', (error) => die(error.message));
    worker.on('exit', (code) => die(`the thread exited with code ${code}`));

    const call = (message: object, transfer: ArrayBuffer[] = []): Promise<Reply> => {
      if (dead) return Promise.reject(dead);
      const id = nextId++;
      worker.ref();
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ ...message, id }, transfer);
      });
    };

    return call({ type: 'create', model, options }).then(
      (created) => {
        ready = true;
        return { worker, call, created };
      },
      async (error: unknown) => {
        await worker.terminate();
        throw error;
      },
    );
  }

  return {
    provider,
    inputNames: first.created.inputNames!,
    outputNames: first.created.outputNames!,
    async run(feeds, runOptions) {
      const thread = await current;
      const moved = runOptions?.giveUpFeeds ? Object.values(feeds) : (runOptions?.lendFeeds ?? []).map((name) => feeds[name]!);
      const transfer = [...new Set(moved.map(bufferOf).filter((buffer) => buffer !== undefined))];
      return (await thread.call({ type: 'run', feeds, fetch: runOptions?.fetch, lend: runOptions?.lendFeeds }, transfer)).outputs!;
    },
    async release() {
      released = true;
      const thread = await current.catch(() => undefined);
      if (!thread) return;
      await thread.call({ type: 'release' }).catch(() => {});
      await thread.worker.terminate();
    },
    async crash() {
      const { worker } = await current;
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ type: 'crash' });
      await exited;
    },
  };
}
