/**
 * `ferry train`, `ferry sample` and `ferry eval`. Only this file loads at startup; tfjs, the
 * models and the trainer are imported inside the actions.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import {
  invalidFlags, invalidOptions, NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, numericOption, OPEN_UNIT_INTERVAL, POSITIVE_INT, POSITIVE_NUMBER,
  rejectInvalidFlags, UNIT_INTERVAL, withoutInvalidFlags,
} from '../cli-flags.ts';
import { FerryError } from '../errors.ts';
import { ARCHS, PRESETS, type Arch } from './models/config.ts';
import { T5_PRESETS } from './models/t5-config.ts';

// Kept in step with DEFAULT_HYPERPARAMETERS in trainer.ts (a test checks), which --help shows
// without loading the trainer.
const DEFAULTS = {
  steps: 2000, batchSize: 12, lr: 1e-3, warmupSteps: 100, weightDecay: 0.1, beta1: 0.9, beta2: 0.99,
  gradClip: 1, evalInterval: 250, evalIters: 20, patience: 0, seed: 1, valFraction: 0.1, logInterval: 10,
};

/** The commander key of each hyperparameter flag -> its Hyperparameters field. */
const HYPERPARAMETER_OF_OPTION = {
  steps: 'steps', batchSize: 'batchSize', lr: 'lr', minLr: 'minLr', warmup: 'warmupSteps', decaySteps: 'decaySteps',
  weightDecay: 'weightDecay', beta1: 'beta1', beta2: 'beta2', gradClip: 'gradClip', evalInterval: 'evalInterval',
  evalIters: 'evalIters', patience: 'patience', seed: 'seed', valFraction: 'valFraction', logInterval: 'logInterval',
  stateful: 'stateful', freezeEmbeddings: 'freezeEmbeddings',
} as const;

const presetList = [
  ...Object.entries(PRESETS).map(([name, preset]) => `${name} (${ARCHS.filter((arch) => preset[arch]).join('/')})`),
  ...Object.keys(T5_PRESETS).map((name) => `${name} (t5)`),
].join(', ');

/** Flags of language models that an encoder-decoder has no use for, and the other way round. */
const LM_ONLY_FLAGS = ['hidden', 'blockSize', 'positional', 'stateful', 'threads', 'evalIters', 'cacheDir', 'initEmbeddings', 'freezeEmbeddings', 'tokenizerFile'];
const T5_ONLY_FLAGS = ['targetCorpus', 'ff', 'maxSourceLength', 'maxTargetLength', 'evalPairs'];
const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export function registerTrainCommands(program: Command): void {
  registerTrain(program);
  registerSample(program);
  registerEval(program);
}

function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'Train an LSTM or Transformer language model on a corpus, or a T5 encoder-decoder on pairs (--arch t5). Writes OUT/last/ and OUT/best/ (complete checkpoints, ' +
        'written atomically at every evaluation), OUT/metrics.jsonl and OUT/loss.svg. Ctrl-C or SIGTERM saves OUT/last/ ' +
        'and exits with 130 or 143; a second Ctrl-C quits at once. --resume continues exactly where the run stopped.',
    )
    .addOption(new Option('--arch <arch>', `model architecture: ${ARCHS.join(' | ')} | t5 (default: the preset's)`))
    .addOption(new Option('--corpus <path>', 'training text: a UTF-8 file, a .gz file, a .jsonl file (each line\'s "text") or a directory of .txt, .md and .jsonl files, gzipped or not, subfolders included; or a .bin file of token ids with --tokenizer-file (on --resume: the run\'s)'))
    .addOption(new Option('--target-corpus <path>', 't5: the target side, line-aligned with --corpus as the source side (else --corpus is a TSV source<TAB>target, a JSONL {"source","target"} or a FreeDict .index file)'))
    .requiredOption('--out <dir>', 'run dir: new or empty, or an earlier run with --resume')
    .addOption(new Option('--preset <name>', `model size: ${presetList} (default: nanogpt-cpu for transformer, lstm-char for lstm)`))
    .addOption(new Option('--tokenizer <kind>', 'char | word | bpe (default: the preset\'s, else char)'))
    .addOption(new Option('--tokenizer-file <path>', 'use this tokenizer.json instead of training one; required for a .bin corpus (nanoGPT\'s uint16 token ids), which it must have produced'))
    .addOption(numericOption('--vocab-size <n>', 'vocabulary size for word (default 10000) and bpe (default 1000)', POSITIVE_INT))
    .addOption(numericOption('--layers <n>', 'LSTM layers or Transformer blocks (default: the preset\'s)', POSITIVE_INT))
    .addOption(numericOption('--hidden <n>', 'LSTM hidden size (default: the preset\'s)', POSITIVE_INT))
    .addOption(numericOption('--embd <n>', 'embedding width; the Transformer\'s model width (default: the preset\'s)', POSITIVE_INT))
    .addOption(numericOption('--heads <n>', 'attention heads, must divide --embd (default: the preset\'s)', POSITIVE_INT))
    .addOption(numericOption('--ff <n>', 't5: feed-forward width (default: the preset\'s)', POSITIVE_INT))
    .addOption(numericOption('--max-source-length <n>', 't5: longest source in tokens, eos included; longer pairs are skipped and counted (default: the preset\'s)', POSITIVE_INT))
    .addOption(numericOption('--max-target-length <n>', 't5: longest target in tokens, eos included; longer pairs are skipped and counted (default: the preset\'s)', POSITIVE_INT))
    .addOption(numericOption('--block-size <n>', 'context length in tokens (default: the preset\'s)', POSITIVE_INT))
    .addOption(numericOption('--dropout <p>', 'dropout rate in [0, 1) (default: the preset\'s)', UNIT_INTERVAL))
    .addOption(new Option('--positional <kind>', 'Transformer positions: learned | sinusoidal | rope | alibi (default: the preset\'s)'))
    .addOption(new Option('--tie-weights', 'share the embedding with the output layer'))
    .addOption(new Option('--no-tie-weights', 'separate output layer'))
    .addOption(numericOption('--steps <n>', 'total optimizer steps', POSITIVE_INT, DEFAULTS.steps))
    .addOption(numericOption('--batch-size <n>', 'sequences per step', POSITIVE_INT, DEFAULTS.batchSize))
    .addOption(numericOption('--lr <x>', 'peak learning rate of AdamW', POSITIVE_NUMBER, DEFAULTS.lr))
    .addOption(numericOption('--min-lr <x>', 'learning rate at the end of the cosine decay (default: lr / 10)', NON_NEGATIVE_NUMBER))
    .addOption(numericOption('--warmup <n>', 'linear warmup steps; left out on a run of at most 100 steps: a tenth of --steps', NON_NEGATIVE_INT, DEFAULTS.warmupSteps))
    .addOption(numericOption('--decay-steps <n>', 'step where the cosine reaches --min-lr (default: --steps)', POSITIVE_INT))
    .addOption(numericOption('--weight-decay <x>', 'AdamW decoupled weight decay (matrices only; not biases, norms, embeddings)', NON_NEGATIVE_NUMBER, DEFAULTS.weightDecay))
    .addOption(numericOption('--beta1 <x>', 'AdamW beta1', UNIT_INTERVAL, DEFAULTS.beta1))
    .addOption(numericOption('--beta2 <x>', 'AdamW beta2', UNIT_INTERVAL, DEFAULTS.beta2))
    .addOption(numericOption('--grad-clip <x>', 'max global gradient norm; 0 turns clipping off', NON_NEGATIVE_NUMBER, DEFAULTS.gradClip))
    .addOption(numericOption('--eval-interval <n>', 'steps between evaluations and checkpoints; left out, at least 5 evaluations per run', POSITIVE_INT, DEFAULTS.evalInterval))
    .addOption(numericOption('--eval-iters <n>', 'val batches per evaluation', POSITIVE_INT, DEFAULTS.evalIters))
    .addOption(numericOption('--eval-pairs <n>', 't5: held-out pairs scored and greedily decoded (exact match, CER) at every evaluation (default 200)', POSITIVE_INT))
    .addOption(numericOption('--patience <n>', 'stop after this many evaluations without a better val loss; 0 = never', NON_NEGATIVE_INT, DEFAULTS.patience))
    .addOption(numericOption('--seed <n>', 'seed for initialisation, batches and dropout', NON_NEGATIVE_INT, DEFAULTS.seed))
    .addOption(numericOption('--val-fraction <x>', 'fraction of the corpus (its end) held out for evaluation', OPEN_UNIT_INTERVAL, DEFAULTS.valFraction))
    .addOption(numericOption('--log-interval <n>', 'steps between log lines and metrics.jsonl entries', POSITIVE_INT, DEFAULTS.logInterval))
    .addOption(new Option('--backend <name>', 'tfjs backend: auto | tfjs-node-gpu | tfjs-node | webgpu | wasm | cpu').default('auto'))
    .addOption(numericOption('--threads <n>', 'threads that share the work of every batch, on wasm and cpu (default: 2 on wasm when 2 ' +
      'cores are idle and the model is big enough to gain, else 1). It never changes the result: a seed alone fixes the run', POSITIVE_INT))
    .addOption(new Option('--stateful', 'LSTM: truncated BPTT, consecutive windows of each of --batch-size streams carry the state across steps (one thread)'))
    .addOption(new Option('--init-embeddings <file>', 'initialise the token embedding from word vectors: GloVe / word2vec text (optional "count dim" header) or word2vec binary, .gz too; ' +
      'their dimension must equal the embedding width (--embd); tokens without a vector keep the random init'))
    .addOption(new Option('--freeze-embeddings', 'with --init-embeddings: do not train the token embedding'))
    .addOption(new Option('--resume', 'continue the run in --out from its last/ checkpoint'))
    .addOption(new Option('--cache-dir <dir>', 'cache of tokenized corpora (default: $FERRY_CACHE_DIR or ~/.cache/ferry)'))
    .action(async (flags: Record<string, unknown>, command: Command) => {
      const problems = invalidFlags(flags);
      const options = withoutInvalidFlags(flags);
      // Only the flags given: the trainer fits its defaults (not a value asked for) to a short run.
      const given = (key: string) => command.getOptionValueSource(key) === 'cli';
      const hyperparameters = Object.fromEntries(
        Object.entries(HYPERPARAMETER_OF_OPTION).filter(([key]) => given(key) && options[key] !== undefined).map(([key, field]) => [field, options[key]]),
      );
      if (isT5Run(options)) {
        await trainT5FromFlags(options, hyperparameters, problems, given);
        return;
      }
      problems.push(...T5_ONLY_FLAGS.filter((key) => options[key] !== undefined).map((key) => `${flagName(key)} applies only to t5 models (--arch t5)`));
      const shape = modelOverrides(options, archOf(options));
      problems.push(...shape.problems);
      const trainOptions = {
        corpus: options.corpus as string | undefined,
        out: options.out as string,
        arch: options.arch as string | undefined,
        preset: options.preset as string | undefined,
        model: shape.overrides,
        tokenizer: options.tokenizer as string | undefined,
        tokenizerFile: options.tokenizerFile as string | undefined,
        vocabSize: options.vocabSize as number | undefined,
        hyperparameters,
        backend: options.backend as string,
        threads: options.threads as number | undefined,
        resume: options.resume === true,
        initEmbeddings: options.initEmbeddings as string | undefined,
        cacheDir: options.cacheDir as string | undefined,
      };
      const { checkNewRun, train } = await import('./trainer.ts');
      if (problems.length > 0) {
        throw invalidOptions([...problems, ...(trainOptions.resume ? [] : checkNewRun(trainOptions).problems)], 'train');
      }
      const { createProgressReporter } = await import('./progress.ts');
      await untilStopSignal(String(options.out), (signal) => train({ ...trainOptions, reporter: createProgressReporter(), signal }));
    });
}

/**
 * Runs a training run with Ctrl-C / SIGTERM wired to its abort signal: the first saves last/ and
 * stops (exit 130 / 143), a second quits at once.
 */
async function untilStopSignal(out: string, run: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) process.exit(exitCodeOf(signal));
    received = signal;
    process.stderr.write(`\n${signal}: saving ${join(out, 'last')} and stopping (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await run(controller.signal);
  } catch (error) {
    // A signal before the first step stops the run with nothing written: still the signal's exit code.
    if (!(received && error instanceof FerryError && error.code === 'interrupted')) throw error;
    process.stderr.write(`ferry: ${error.message}\n`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (received) process.exitCode = exitCodeOf(received);
}

/** --arch t5, a T5 preset, or --resume of a T5 run. */
function isT5Run(options: Record<string, unknown>): boolean {
  if (options.arch !== undefined) return options.arch === 't5';
  if (typeof options.preset === 'string') return T5_PRESETS[options.preset] !== undefined;
  return options.resume === true && manifestArch(join(String(options.out), 'last', 'ferry.json')) === 't5';
}

function manifestArch(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { model?: { arch?: string } }).model?.arch;
  } catch {
    return undefined;
  }
}

async function trainT5FromFlags(options: Record<string, unknown>, hyperparameters: Record<string, unknown>, problems: string[], given: (key: string) => boolean): Promise<void> {
  problems.push(...LM_ONLY_FLAGS.filter((key) => given(key) && options[key] !== undefined).map((key) => `${flagName(key)} applies only to language models, not t5`));
  const width = options.embd as number | undefined;
  const heads = options.heads as number | undefined;
  const model: Record<string, unknown> = {
    dModel: width, nHeads: heads, dFf: options.ff, nEncoderLayers: options.layers, nDecoderLayers: options.layers,
    dropout: options.dropout, tieWeights: options.tieWeights, maxSourceLength: options.maxSourceLength, maxTargetLength: options.maxTargetLength,
  };
  if (width !== undefined || heads !== undefined) {
    const { T5_PRESETS: presets, DEFAULT_T5_PRESET } = await import('./models/t5-config.ts');
    const preset = presets[typeof options.preset === 'string' ? options.preset : DEFAULT_T5_PRESET]?.t5;
    const w = width ?? preset?.dModel;
    const h = heads ?? preset?.nHeads;
    if (w !== undefined && h !== undefined) {
      if (w % h === 0) model.dKv = w / h;
      else problems.push(`--heads ${h} must divide --embd ${w}`);
    }
  }
  const t5Options = {
    corpus: options.corpus as string | undefined,
    targetCorpus: options.targetCorpus as string | undefined,
    out: options.out as string,
    preset: options.preset as string | undefined,
    model,
    tokenizer: options.tokenizer as string | undefined,
    vocabSize: options.vocabSize as number | undefined,
    hyperparameters,
    evalPairs: options.evalPairs as number | undefined,
    backend: options.backend as string,
    resume: options.resume === true,
  };
  const { checkNewT5Run, trainT5 } = await import('./t5-trainer.ts');
  if (problems.length > 0) throw invalidOptions([...problems, ...(t5Options.resume ? [] : checkNewT5Run(t5Options).problems)], 'train');
  const { createProgressReporter } = await import('./progress.ts');
  await untilStopSignal(t5Options.out, (signal) => trainT5({ ...t5Options, reporter: createProgressReporter(), signal }));
}

function exitCodeOf(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/** The arch the model flags apply to: --arch, else the preset's, else (on --resume) the checkpoint's. */
function archOf(options: Record<string, unknown>): Arch | undefined {
  if (typeof options.arch === 'string') return (ARCHS as readonly string[]).includes(options.arch) ? (options.arch as Arch) : undefined;
  const preset = typeof options.preset === 'string' ? PRESETS[options.preset] : undefined;
  const presetArchs = preset ? ARCHS.filter((arch) => preset[arch]) : [];
  if (presetArchs.length === 1) return presetArchs[0];
  return options.resume ? (manifestArch(join(String(options.out), 'last', 'ferry.json')) as Arch | undefined) : undefined;
}

/** Maps the shape flags onto the ModelConfig fields of the arch they apply to; a flag of the other arch is a problem. */
function modelOverrides(options: Record<string, unknown>, arch: Arch | undefined): { overrides: Record<string, unknown>; problems: string[] } {
  // With no known arch, the arch itself is the problem resolveModelConfig reports.
  const problems = ([['--hidden', 'lstm'], ['--heads', 'transformer'], ['--positional', 'transformer']] as const)
    .filter(([flag, which]) => arch !== undefined && arch !== which && options[flag.slice(2)] !== undefined)
    .map(([flag, which]) => `${flag} applies only to ${which} models, not ${arch}` + (which === 'lstm' ? ' (for a Transformer, --embd sets the model width)' : ''));
  const shared = { blockSize: options.blockSize, dropout: options.dropout, tieWeights: options.tieWeights };
  const overrides = arch === 'lstm'
    ? { ...shared, numLayers: options.layers, hiddenSize: options.hidden, embeddingDim: options.embd }
    : { ...shared, nLayer: options.layers, nEmbd: options.embd, nHead: options.heads, positional: options.positional };
  return { overrides, problems };
}

function registerSample(program: Command): void {
  program
    .command('sample')
    .description('Generate text with tfjs from a checkpoint (a run dir means its best/), to see what a run has learned.')
    .argument('<dir>', 'checkpoint dir, or a run dir')
    .option('--prompt <text>', 'text to continue (empty: start from <|endoftext|> when the vocabulary has it)', '')
    .addOption(numericOption('--max-tokens <n>', 'tokens to generate', POSITIVE_INT, 200))
    .addOption(numericOption('--temperature <x>', 'sampling temperature; 0 is greedy', NON_NEGATIVE_NUMBER, 0.8))
    .addOption(numericOption('--top-k <n>', 'sample among the k most likely tokens; 0 = all', NON_NEGATIVE_INT, 40))
    .addOption(numericOption('--seed <n>', 'sampling seed', NON_NEGATIVE_INT, 1))
    .option('--greedy', 'always take the most likely token (same as --temperature 0)')
    .option('--no-stop', 'keep going past <|endoftext|>')
    .addOption(new Option('--backend <name>', 'tfjs backend: auto | tfjs-node-gpu | tfjs-node | webgpu | wasm | cpu').default('auto'))
    .action(async (dir: string, options: Record<string, unknown>) => {
      rejectInvalidFlags(options, 'sample');
      const { selectBackend } = await import('./backend.ts');
      await selectBackend(options.backend as string);
      const { sampleFromCheckpoint } = await import('./sample.ts');
      const prompt = options.prompt as string;
      process.stdout.write(prompt);
      await sampleFromCheckpoint(
        dir,
        prompt,
        {
          maxTokens: options.maxTokens as number,
          temperature: options.greedy ? 0 : (options.temperature as number),
          topK: (options.topK as number) === 0 ? null : (options.topK as number),
          seed: options.seed as number,
          stopAtEos: options.stop !== false,
        },
        (piece) => process.stdout.write(piece),
      );
      process.stdout.write('\n');
    });
}

function registerEval(program: Command): void {
  program
    .command('eval')
    .description('Perplexity of a checkpoint (a run dir means its best/) on a corpus; every token after the first is scored once. ' +
      'A T5 checkpoint is scored on a file of pairs: loss, perplexity, and greedy exact match and character error rate. ' +
      'With --by-position: the mean loss at each position of context windows (a checkpoint, run dir or exported package), as a table, PREFIX.jsonl and PREFIX.svg.')
    .argument('<dir>', 'checkpoint dir, or a run dir (with --by-position also an ONNX package dir)')
    .requiredOption('--corpus <path>', 'text to score: a UTF-8 file, a .gz file, a .jsonl file (each line\'s "text") or a directory of .txt, .md and .jsonl files, gzipped or not, subfolders included')
    .addOption(numericOption('--batch-size <n>', 'windows per forward pass', POSITIVE_INT, 16))
    .option('--json', 'print the result as one JSON object')
    .option('--cache-dir <dir>', 'cache of tokenized corpora (default: $FERRY_CACHE_DIR or ~/.cache/ferry)')
    .addOption(new Option('--backend <name>', 'tfjs backend: auto | tfjs-node-gpu | tfjs-node | webgpu | wasm | cpu').default('auto'))
    .option('--by-position', 'mean loss at each position of windows that start from an empty context (held-out text in --corpus)')
    .addOption(numericOption('--window <n>', 'with --by-position: tokens per window (default: the model\'s block size)', POSITIVE_INT))
    .option('--held-out', 'T5 checkpoints: score only the pairs of --corpus the run held out (its seed and --val-fraction)')
    .addOption(numericOption('--max-pairs <n>', 'T5 checkpoints: score at most this many pairs of --corpus, spread evenly over it (default: all)', POSITIVE_INT))
    .option('--out <prefix>', 'with --by-position: write PREFIX.jsonl and PREFIX.svg', 'by-position')
    .action(async (dir: string, options: Record<string, unknown>) => {
      rejectInvalidFlags(options, 'eval');
      const { checkpointArch, resolveCheckpointDir } = await import('./checkpoint.ts');
      const checkpointDir = await resolveCheckpointDir(dir).catch(() => undefined);
      if (checkpointDir && (await checkpointArch(checkpointDir)) === 't5') {
        await evalT5(checkpointDir, options);
        return;
      }
      if (options.heldOut || options.maxPairs !== undefined) {
        throw invalidOptions([`${options.heldOut ? '--held-out' : '--max-pairs'} applies to T5 checkpoints, scored on pairs; ${dir} is a language model`], 'eval');
      }
      if (options.byPosition) {
        await evalByPosition(dir, options);
        return;
      }
      const { selectBackend } = await import('./backend.ts');
      await selectBackend(options.backend as string);
      const { evaluateCheckpoint } = await import('./evaluate.ts');
      const { createCountReporter } = await import('./progress.ts');
      const { describeCorpus } = await import('./data/index.ts');
      const corpusLine = await describeCorpus(options.corpus as string).catch(() => undefined);
      if (corpusLine) process.stderr.write(`${corpusLine}\n`);
      const progress = createCountReporter('eval', 'tokens scored');
      const result = await evaluateCheckpoint(dir, options.corpus as string, {
        batchSize: options.batchSize as number,
        cacheDir: options.cacheDir as string | undefined,
        onProgress: progress.update,
      }).finally(progress.end);
      if (options.json) {
        console.log(JSON.stringify(result));
        return;
      }
      console.log(
        `${result.checkpointDir}: ${result.scoredTokens.toLocaleString('en')} token${result.scoredTokens === 1 ? '' : 's'} scored (of ${result.tokens.toLocaleString('en')}; the first has no context), loss ${result.loss.toFixed(4)} nats/token ` +
          `(${result.bitsPerToken.toFixed(4)} bits), perplexity ${result.perplexity.toFixed(3)} [${result.seconds.toFixed(1)} s]`,
      );
    });
}

async function evalT5(dir: string, options: Record<string, unknown>): Promise<void> {
  if (options.byPosition) throw invalidOptions([`--by-position scores language models; ${dir} is a T5 checkpoint`], 'eval');
  const { selectBackend } = await import('./backend.ts');
  await selectBackend(options.backend as string);
  const { evaluateT5Checkpoint } = await import('./t5-evaluate.ts');
  const result = await evaluateT5Checkpoint(dir, options.corpus as string, {
    batchSize: options.batchSize as number, heldOut: options.heldOut === true, maxPairs: options.maxPairs as number | undefined,
  });
  if (options.json) {
    console.log(JSON.stringify(result));
    return;
  }
  if (result.skipped) process.stderr.write(`${result.skipped}\n`);
  console.log(
    `${result.checkpointDir}: ${result.pairs.toLocaleString('en')} pairs (${result.tokens.toLocaleString('en')} target tokens), loss ${result.loss.toFixed(4)} nats/token, ` +
      `perplexity ${result.perplexity.toFixed(3)}; greedy: exact match ${(100 * result.exactMatch).toFixed(1)}%, CER ${(100 * result.cer).toFixed(1)}% [${result.seconds.toFixed(1)} s]`,
  );
  for (const { source, target, output } of result.examples) console.log(`  ${JSON.stringify(source)} -> ${JSON.stringify(output)} (expected ${JSON.stringify(target)})`);
}

async function evalByPosition(dir: string, options: Record<string, unknown>): Promise<void> {
  const { defaultCacheDir } = await import('./evaluate.ts');
  const scoring = { batchSize: options.batchSize as number, window: options.window as number | undefined, cacheDir: (options.cacheDir as string | undefined) ?? defaultCacheDir() };
  // Exported packages are scored by their ONNX graph (onnxruntime), checkpoints by tfjs.
  const onnx = await import('../export/position-loss.ts');
  let report;
  if (await onnx.isOnnxPackage(dir)) {
    report = await onnx.positionLossOfPackage(dir, options.corpus as string, scoring);
  } else {
    const { selectBackend } = await import('./backend.ts');
    await selectBackend(options.backend as string);
    const { positionLossOfCheckpoint } = await import('./evaluate.ts');
    report = await positionLossOfCheckpoint(dir, options.corpus as string, scoring);
  }
  const { formatPositionTable, writePositionReport } = await import('./position-loss.ts');
  const written = writePositionReport(options.out as string, report);
  if (options.json) console.log(JSON.stringify({ ...report, files: written }));
  else process.stdout.write(`${formatPositionTable(report)}wrote ${written.join(', ')}\n`);
}
