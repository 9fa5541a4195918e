/**
 * `train()`: corpus -> tokenizer -> tokens -> model -> the training loop (loop.ts), into a new run
 * dir or resuming one (run-dir.ts), with every option checked before anything is written.
 *
 * Everything random is drawn from `seed`: batches from the data RNG (saved in the checkpoint),
 * weight initialisation and dropout from Math.random seeded per step (tfjs seeds its unseeded
 * random ops from Math.random), so an interrupted and resumed run takes the same steps as an
 * uninterrupted one.
 */
import { mkdir } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { FerryError } from '../errors.ts';
import type { Tokenizer, TokenizerKind } from '../tokenizer/index.ts';
import { selectBackend } from './backend.ts';
import { createRng, describeCorpus, prepareTokens, splitTrainVal, type TokenSource } from './data/index.ts';
import { openTokenBin, TOKEN_BIN } from './data/token-bin.ts';
import { readTokenizerFile } from '../tokenizer/node.ts';
import { defaultCacheDir } from './evaluate.ts';
import { invalidOptions } from '../cli-flags.ts';
import { resolveHyperparameters, type Hyperparameters, type ResolvedHyperparameters } from './hyperparameters.ts';
import { createTrainingLoop, type TrainResult } from './loop.ts';
import { createMetricsLog } from './metrics.ts';
import { countParameters, createModel, type ModelConfig } from './models/index.ts';
import { createAdamW, DEFAULT_ADAMW, type Parameter } from './optimizer.ts';
import { createStepGradients, type StepGradients } from './parallel/gradients.ts';
import { withSeededRandom } from './parallel/shard.ts';
import { checkThreads, planShards, planThreads } from './parallel/threads.ts';
import { createStatefulGradients } from './stateful.ts';
import { createLineReporter, type ProgressReporter } from './progress.ts';
import { applyEmbeddings, checkEmbeddingsWidth, describeEmbeddings, embeddingFlagProblems, embeddingWidth, readPretrainedEmbeddings, refuseEmbeddingsOnResume, trainedWeights, type PretrainedEmbeddings } from './embeddings.ts';
import { inspectRunDir, readResumePoint, type ResumePoint, type TrainState } from './run-dir.ts';
import { buildTokenizer, modelProblems, presetVocabSize, problemOf, resolveConfig, resolveTokenizerKind } from './run-options.ts';

export { DEFAULT_HYPERPARAMETERS, type Hyperparameters } from './hyperparameters.ts';
export type { TrainResult } from './loop.ts';
export type { StopReason } from './run-dir.ts';

export interface TrainOptions {
  /** A text file, a .gz file or a directory of .txt/.md files (subfolders too). On resume, default: the run's corpus. */
  corpus?: string;
  /** The run dir; gets `last/`, `best/`, `metrics.jsonl`, `loss.svg`. */
  out: string;
  arch?: string;
  preset?: string;
  /** ModelConfig fields that replace the preset's (blockSize, dropout, nEmbd, hiddenSize, ...). */
  model?: Record<string, unknown>;
  tokenizer?: string;
  /** Vocabulary size for word and BPE tokenizers. */
  vocabSize?: number;
  /** Only the values to change: defaults for a new run, the saved ones on resume. */
  hyperparameters?: Partial<Hyperparameters>;
  backend?: string;
  /**
   * Threads that share each step's shards (data-parallel; wasm and cpu backends). Default: 2 on
   * wasm when 2 cores are idle and a step is big enough to gain, else 1. It never changes a
   * number: a seed alone fixes the run.
   */
  threads?: number;
  /**
   * Shards each batch is split into, which the numbers do depend on. Default: planShards' (the
   * model and batch alone decide); on resume, the run's.
   */
  shards?: number;
  resume?: boolean;
  /** A GloVe / word2vec file whose vectors initialise the token embedding of a new run (src/train/embeddings.ts). */
  initEmbeddings?: string;
  /**
   * A tokenizer.json to use instead of training one on the corpus; required for a pre-tokenized
   * `.bin` corpus (nanoGPT's uint16 ids), whose ids only it can read.
   */
  tokenizerFile?: string;
  /** Where tokenized corpora are cached; default $FERRY_CACHE_DIR or ~/.cache/ferry. */
  cacheDir?: string;
  reporter?: ProgressReporter;
  /** Aborting stops the run after the current step, saves `last`, and resolves. */
  signal?: AbortSignal;
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const reporter = options.reporter ?? createLineReporter((line) => console.log(line));
  const runDir = resolve(options.out);
  const runKind = inspectRunDir(runDir, options.resume === true);
  // The cheap checks first, so a typo fails before the corpus is read.
  const newRun = runKind === 'new' ? checkNewRun(options) : undefined;
  if (newRun && newRun.problems.length > 0) throw invalidOptions(newRun.problems, 'train');
  checkThreads(options.threads);
  const tokenizerKind = newRun?.tokenizerKind ?? 'char';

  const selected = await selectBackend(options.backend ?? 'auto');
  const backend = selected.name;
  const resumed = runKind === 'resume' ? await readResumePoint(runDir) : undefined;
  let model = resumed?.model;
  try {
    const { hyperparameters, notes, problems } = newRun ?? resolveHyperparameters(resumed?.state.hyperparameters, options.hyperparameters ?? {});
    if (problems.length > 0) throw invalidOptions(problems, 'train');
    if (resumed) {
      resolveTokenizerKind(options.tokenizer, options.preset, resumed.tokenizer.kind);
      resolveConfig(options, resumed.config.vocabSize, resumed.config);
      refuseEmbeddingsOnResume(options.initEmbeddings, resumed.state.embeddings);
      if (options.tokenizerFile !== undefined) {
        throw new FerryError('resume_mismatch', 'Cannot resume with --tokenizer-file: a resumed run keeps its tokenizer.', { hint: 'Drop --tokenizer-file.' });
      }
    }
    // Absolute, so that `--resume` finds it from any working directory.
    const corpus = options.corpus === undefined ? resumed?.state.corpus : resolve(options.corpus);
    if (corpus === undefined) {
      throw new FerryError('missing_corpus', 'No corpus given.', { hint: 'Pass --corpus PATH (a text file, a .gz file or a directory of .txt or .md files).' });
    }
    // Before the corpus is tokenized: a file of the wrong width fails at once.
    if (!resumed && options.initEmbeddings !== undefined) await checkEmbeddingsWidth(options.initEmbeddings, embeddingWidth(resolveConfig(options, 1, undefined)));
    reporter.message(`backend: ${selected.detail}`);
    for (const note of notes) reporter.message(note);
    const corpusLine = await describeCorpus(corpus);
    if (corpusLine) reporter.message(corpusLine);
    const pretokenized = TOKEN_BIN.test(corpus);
    if (!resumed && pretokenized && options.tokenizerFile === undefined) {
      throw new FerryError('tokenizer_not_found', `--corpus ${corpus} holds token ids (nanoGPT's uint16 .bin), which need the tokenizer that produced them.`, {
        hint: 'Pass --tokenizer-file with that tokenizer.json.',
      });
    }
    if (!resumed && options.tokenizerFile === undefined && tokenizerKind === 'char' && options.vocabSize !== undefined) {
      reporter.message(`note: the char tokenizer takes every character of the corpus; vocabSize ${options.vocabSize} applies to word and bpe only`);
    }

    const tokenizer = resumed?.tokenizer ?? (options.tokenizerFile !== undefined
      ? await readTokenizerFile(resolve(options.tokenizerFile))
      : await buildTokenizer(corpus, tokenizerKind, options.vocabSize ?? presetVocabSize(options.preset)));
    const prepared = pretokenized
      ? await openTokenBin(corpus, tokenizer.vocabSize)
      : await prepareTokens({ corpusPath: corpus, tokenizer, cacheDir: options.cacheDir ?? defaultCacheDir() });
    if (resumed && prepared.corpusHash !== resumed.state.corpusHash) {
      reporter.message(`warning: the corpus changed since the run started (${resumed.state.corpusHash} -> ${prepared.corpusHash})`);
    }
    const config = resumed?.config ?? resolveConfig(options, tokenizer.vocabSize, undefined);
    if (hyperparameters.stateful && config.arch !== 'lstm') {
      throw new FerryError('invalid_hyperparameter', `--stateful carries an LSTM's state across batches; this is a ${config.arch}.`, { hint: 'Drop --stateful, or train --arch lstm.' });
    }
    if (hyperparameters.stateful && (options.threads ?? 1) > 1) {
      throw new FerryError('invalid_hyperparameter', `--stateful trains on one thread, not --threads ${options.threads}.`, { hint: 'Drop --threads.' });
    }
    // Read (and its dimension checked) before the run dir appears; only the vocabulary's vectors are kept.
    const embeddings = !resumed && options.initEmbeddings !== undefined
      ? await readPretrainedEmbeddings(options.initEmbeddings, tokenizer, embeddingWidth(config), { frozen: hyperparameters.freezeEmbeddings })
      : undefined;
    const { train: trainTokens, val: valTokens } = splitTrainVal(prepared.tokens, hyperparameters.valFraction, config.blockSize);
    if (options.signal?.aborted) {
      throw new FerryError('interrupted', 'Interrupted before training started; nothing was written.');
    }
    // Everything the user can get wrong has been checked: only now does the run dir appear.
    await mkdir(runDir, { recursive: true });
    model ??= withSeededRandom(hyperparameters.seed, () => createModel(config));
    if (embeddings) applyEmbeddings(model, embeddings);
    for (const line of embeddings ? describeEmbeddings(embeddings, config) : []) reporter.message(line);
    return await runTraining({
      runDir, reporter, resumed, model, hyperparameters, corpus, corpusHash: prepared.corpusHash, tokenizer, config, backend,
      requestedThreads: hyperparameters.stateful ? 1 : options.threads, requestedShards: hyperparameters.stateful ? 1 : options.shards, trainTokens, valTokens, signal: options.signal,
      embeddings,
    });
  } finally {
    model?.dispose();
  }
}

export interface NewRunCheck extends ResolvedHyperparameters {
  tokenizerKind: TokenizerKind;
}

/**
 * Every problem of a new run's options at once, in flag names: hyperparameters, threads,
 * tokenizer and model flags (what can be checked before the corpus gives the vocabulary).
 */
export function checkNewRun(options: TrainOptions): NewRunCheck {
  const resolved = resolveHyperparameters(undefined, options.hyperparameters ?? {});
  const problems = [...resolved.problems];
  const collect = <T>(check: () => T): T | undefined => {
    try {
      return check();
    } catch (error) {
      if (!(error instanceof FerryError)) throw error;
      problems.push(problemOf(error));
      return undefined;
    }
  };
  collect(() => checkThreads(options.threads));
  if (options.shards !== undefined && !(Number.isInteger(options.shards) && options.shards > 0)) problems.push(`shards must be a whole number above 0, got ${options.shards}`);
  const tokenizerKind = collect(() => resolveTokenizerKind(options.tokenizer, options.preset, undefined)) ?? 'char';
  problems.push(...modelProblems(options, 1));
  problems.push(...embeddingFlagProblems(options.initEmbeddings, options.hyperparameters?.freezeEmbeddings));
  if (options.tokenizerFile !== undefined && (options.tokenizer !== undefined || options.vocabSize !== undefined)) {
    problems.push(`--tokenizer-file gives the tokenizer; ${options.tokenizer !== undefined ? '--tokenizer' : '--vocab-size'} would train another`);
  }
  return { ...resolved, problems, tokenizerKind };
}

interface RunPlan {
  runDir: string;
  reporter: ProgressReporter;
  resumed: ResumePoint | undefined;
  model: tf.LayersModel;
  hyperparameters: Hyperparameters;
  corpus: string;
  corpusHash: string;
  tokenizer: Tokenizer;
  config: ModelConfig;
  backend: string;
  requestedThreads: number | undefined;
  requestedShards: number | undefined;
  trainTokens: TokenSource;
  valTokens: TokenSource;
  signal: AbortSignal | undefined;
  /** A new run's --init-embeddings, recorded in its state and ferry.json. */
  embeddings?: PretrainedEmbeddings;
}

async function runTraining(plan: RunPlan): Promise<TrainResult> {
  const { runDir, reporter, resumed, model, hyperparameters, corpus, corpusHash, tokenizer, config, backend, trainTokens, valTokens } = plan;
  const seed = hyperparameters.seed;
  // --freeze-embeddings: the token table is no parameter, so AdamW never touches it and no gradient is computed for it.
  const parameters: Parameter[] = trainedWeights(model, hyperparameters.freezeEmbeddings).map((weight) => ({
    name: weight.originalName,
    variable: weight.read() as tf.Variable,
  }));
  const optimizer = createAdamW(parameters, {
    beta1: hyperparameters.beta1,
    beta2: hyperparameters.beta2,
    epsilon: DEFAULT_ADAMW.epsilon,
    weightDecay: hyperparameters.weightDecay,
  });
  if (resumed) optimizer.loadState(resumed.optimizerState);
  const rng = createRng(seed);
  if (resumed) rng.setState(resumed.state.rngState);
  const title = `${basename(runDir)}: ${config.arch}, ${countParameters(config).toLocaleString('en')} parameters, ${tokenizer.kind} tokenizer`;
  const metrics = createMetricsLog(runDir, resumed?.metrics ?? [], title);

  const state: TrainState = resumed?.state ?? {
    format: 'ferry-train-state',
    version: 1,
    step: 0,
    rngState: rng.getState(),
    bestValLoss: null,
    bestStep: null,
    lastValLoss: null,
    evalsWithoutImprovement: 0,
    seconds: 0,
    pendingLoss: { sum: 0, count: 0, seconds: 0 },
    hyperparameters,
    corpus,
    corpusHash,
    stopReason: 'running',
  };
  state.hyperparameters = hyperparameters;
  if (plan.embeddings) state.embeddings = plan.embeddings.coverage;
  if (resumed && hyperparameters.freezeEmbeddings) reporter.message('embeddings: frozen (--freeze-embeddings), as when the run started');
  state.corpus = corpus;
  state.corpusHash = corpusHash;

  reporter.message(
    `${resumed ? `resuming ${runDir} at step ${state.step}` : `training into ${runDir}`}: ${config.arch}, ` +
      `${countParameters(config).toLocaleString('en')} parameters, ${tokenizer.kind} tokenizer of ${tokenizer.vocabSize} tokens, ` +
      `${trainTokens.length.toLocaleString('en')} train / ${valTokens.length.toLocaleString('en')} val tokens`,
  );

  const flopsPerStep = 6 * countParameters(config) * hyperparameters.batchSize * config.blockSize;
  // Runs from before shards split each batch by their thread count.
  const shards = resumed ? (resumed.state.shards ?? resumed.state.threads ?? 1) : Math.min(plan.requestedShards ?? planShards(flopsPerStep, hyperparameters.batchSize), hyperparameters.batchSize);
  if (resumed && plan.requestedShards !== undefined && plan.requestedShards !== shards) {
    throw new FerryError('resume_mismatch', `Cannot resume with ${plan.requestedShards} shards: the run splits each batch into ${shards}.`, {
      hint: 'Leave shards out on resume.',
    });
  }
  const { threads, note } = await planThreads({ requested: plan.requestedThreads, backend, flopsPerStep, shards });
  if (note) reporter.message(note);
  state.threads = threads;
  state.shards = shards;
  let gradients: StepGradients | undefined;
  try {
    const variables = parameters.map(({ variable }) => variable);
    if (hyperparameters.stateful && config.arch === 'lstm') {
      const stateful = createStatefulGradients(model, variables, config, hyperparameters.batchSize);
      if (state.carriedState) stateful.restore(state.carriedState);
      gradients = stateful;
    } else {
      gradients = await createStepGradients({ model, variables, config, backend, threads, shards });
    }
    const session = createTrainingLoop({
      model, config, tokenizer, optimizer, gradients, rng, metrics, state, backend, runDir, reporter,
      trainTokens, valTokens, signal: plan.signal,
    });
    return await session.run();
  } finally {
    await gradients?.close();
    optimizer.dispose();
  }
}
