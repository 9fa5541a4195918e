/**
 * `ferry train`, `ferry sample` and `ferry eval`. Only this file loads at startup; tfjs, the
 * models and the trainer are imported inside the actions.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { FerryError } from '../errors.ts';
import { ARCHS, PRESETS, type Arch } from './models/config.ts';

// Kept in step with DEFAULT_HYPERPARAMETERS in trainer.ts (a test checks), which --help shows
// without loading the trainer.
const DEFAULTS = {
  steps: 2000, batchSize: 12, lr: 1e-3, warmupSteps: 100, weightDecay: 0.1, beta1: 0.9, beta2: 0.99,
  gradClip: 1, evalInterval: 250, evalIters: 20, patience: 0, seed: 1, valFraction: 0.1, logInterval: 10,
};

const HYPERPARAMETER_FLAGS = {
  steps: 'steps', batchSize: 'batchSize', lr: 'lr', minLr: 'minLr', warmup: 'warmupSteps', decaySteps: 'decaySteps',
  weightDecay: 'weightDecay', beta1: 'beta1', beta2: 'beta2', gradClip: 'gradClip', evalInterval: 'evalInterval',
  evalIters: 'evalIters', patience: 'patience', seed: 'seed', valFraction: 'valFraction', logInterval: 'logInterval',
} as const;

type Parser = (value: string) => number;

function numberFlag(flag: string, accept: (n: number) => boolean, expected: string, integer: boolean): Parser {
  return (value: string) => {
    const n = value.trim() === '' ? Number.NaN : Number(value);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || !accept(n)) {
      throw new FerryError('INVALID_FLAG', `${flag} must be ${expected}, got "${value}".`, { hint: `Run \`ferry ${commandOf(flag)} --help\` for the options.` });
    }
    return n;
  };
}

const commandOf = (flag: string) => (flag === '--prompt' ? 'sample' : 'train');
const positiveInt = (flag: string) => numberFlag(flag, (n) => n > 0, 'a whole number above 0', true);
const nonNegativeInt = (flag: string) => numberFlag(flag, (n) => n >= 0, 'a whole number >= 0', true);
const positiveNumber = (flag: string) => numberFlag(flag, (n) => n > 0, 'a number above 0', false);
const nonNegativeNumber = (flag: string) => numberFlag(flag, (n) => n >= 0, 'a number >= 0', false);
const unitInterval = (flag: string) => numberFlag(flag, (n) => n >= 0 && n < 1, 'a number in [0, 1)', false);
const openUnitInterval = (flag: string) => numberFlag(flag, (n) => n > 0 && n < 1, 'a number strictly between 0 and 1', false);

function numeric(flags: string, description: string, parse: (flag: string) => Parser, defaultValue?: number): Option {
  const flag = flags.split(' ')[0]!;
  const option = new Option(flags, description).argParser(parse(flag));
  return defaultValue === undefined ? option : option.default(defaultValue);
}

const presetList = Object.entries(PRESETS)
  .map(([name, preset]) => `${name} (${ARCHS.filter((arch) => preset[arch]).join('/')})`)
  .join(', ');

export function registerTrainCommands(program: Command): void {
  registerTrain(program);
  registerSample(program);
  registerEval(program);
}

function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'Train an LSTM or Transformer language model on a corpus. Writes OUT/last/ and OUT/best/ (complete checkpoints, ' +
        'written atomically at every evaluation), OUT/metrics.jsonl and OUT/loss.svg. Ctrl-C or SIGTERM saves OUT/last/ ' +
        'and exits with 130 or 143; a second Ctrl-C quits at once. --resume continues exactly where the run stopped.',
    )
    .addOption(new Option('--arch <arch>', `model architecture: ${ARCHS.join(' | ')} (default: the preset's)`))
    .addOption(new Option('--corpus <path>', 'training text: a UTF-8 file, a .gz file or a directory of .txt files (on --resume: the run\'s)'))
    .requiredOption('--out <dir>', 'run dir: new or empty, or an earlier run with --resume')
    .addOption(new Option('--preset <name>', `model size: ${presetList} (default: nanogpt-cpu for transformer, lstm-char for lstm)`))
    .addOption(new Option('--tokenizer <kind>', 'char | word | bpe (default: the preset\'s, else char)'))
    .addOption(numeric('--vocab-size <n>', 'vocabulary size for word (default 10000) and bpe (default 1000)', positiveInt))
    .addOption(numeric('--layers <n>', 'LSTM layers or Transformer blocks (default: the preset\'s)', positiveInt))
    .addOption(numeric('--hidden <n>', 'LSTM hidden size (default: the preset\'s)', positiveInt))
    .addOption(numeric('--embd <n>', 'embedding width; the Transformer\'s model width (default: the preset\'s)', positiveInt))
    .addOption(numeric('--heads <n>', 'attention heads, must divide --embd (default: the preset\'s)', positiveInt))
    .addOption(numeric('--block-size <n>', 'context length in tokens (default: the preset\'s)', positiveInt))
    .addOption(numeric('--dropout <p>', 'dropout rate in [0, 1) (default: the preset\'s)', unitInterval))
    .addOption(new Option('--positional <kind>', 'Transformer positions: learned | sinusoidal (default: the preset\'s)'))
    .addOption(new Option('--tie-weights', 'share the embedding with the output layer'))
    .addOption(new Option('--no-tie-weights', 'separate output layer'))
    .addOption(numeric('--steps <n>', 'total optimizer steps', positiveInt, DEFAULTS.steps))
    .addOption(numeric('--batch-size <n>', 'sequences per step', positiveInt, DEFAULTS.batchSize))
    .addOption(numeric('--lr <x>', 'peak learning rate of AdamW', positiveNumber, DEFAULTS.lr))
    .addOption(numeric('--min-lr <x>', 'learning rate at the end of the cosine decay (default: lr / 10)', nonNegativeNumber))
    .addOption(numeric('--warmup <n>', 'linear warmup steps', nonNegativeInt, DEFAULTS.warmupSteps))
    .addOption(numeric('--decay-steps <n>', 'step where the cosine reaches --min-lr (default: --steps)', positiveInt))
    .addOption(numeric('--weight-decay <x>', 'AdamW decoupled weight decay (matrices only; not biases, norms, embeddings)', nonNegativeNumber, DEFAULTS.weightDecay))
    .addOption(numeric('--beta1 <x>', 'AdamW beta1', unitInterval, DEFAULTS.beta1))
    .addOption(numeric('--beta2 <x>', 'AdamW beta2', unitInterval, DEFAULTS.beta2))
    .addOption(numeric('--grad-clip <x>', 'max global gradient norm; 0 turns clipping off', nonNegativeNumber, DEFAULTS.gradClip))
    .addOption(numeric('--eval-interval <n>', 'steps between evaluations and checkpoints', positiveInt, DEFAULTS.evalInterval))
    .addOption(numeric('--eval-iters <n>', 'val batches per evaluation', positiveInt, DEFAULTS.evalIters))
    .addOption(numeric('--patience <n>', 'stop after this many evaluations without a better val loss; 0 = never', nonNegativeInt, DEFAULTS.patience))
    .addOption(numeric('--seed <n>', 'seed for initialisation, batches and dropout', nonNegativeInt, DEFAULTS.seed))
    .addOption(numeric('--val-fraction <x>', 'fraction of the corpus (its end) held out for evaluation', openUnitInterval, DEFAULTS.valFraction))
    .addOption(numeric('--log-interval <n>', 'steps between log lines and metrics.jsonl entries', positiveInt, DEFAULTS.logInterval))
    .addOption(new Option('--backend <name>', 'tfjs backend: auto | tfjs-node-gpu | tfjs-node | webgpu | wasm | cpu').default('auto'))
    .addOption(numeric('--threads <n>', 'threads that each compute part of every batch, on wasm and cpu (default: 2 on wasm when 2 ' +
      'cores are idle and the model is big enough to gain, else 1; on --resume: the run\'s). A seed and thread count always ' +
      'train the same way', positiveInt))
    .addOption(new Option('--resume', 'continue the run in --out from its last/ checkpoint'))
    .addOption(new Option('--cache-dir <dir>', 'cache of tokenized corpora (default: $FERRY_CACHE_DIR or ~/.cache/ferry)'))
    .action(async (options: Record<string, unknown>, command: Command) => {
      const given = (key: string) => command.getOptionValueSource(key) === 'cli';
      const hyperparameters = Object.fromEntries(
        Object.entries(HYPERPARAMETER_FLAGS)
          .filter(([flag]) => given(flag) || (!options.resume && options[flag] !== undefined))
          .map(([flag, key]) => [key, options[flag]]),
      );
      const model = modelOverrides(options, archOf(options));
      const { train } = await import('./trainer.ts');
      const { createProgressReporter } = await import('./progress.ts');
      const controller = new AbortController();
      let received: NodeJS.Signals | undefined;
      const onSignal = (signal: NodeJS.Signals) => {
        if (received) process.exit(exitCodeOf(signal));
        received = signal;
        process.stderr.write(`\n${signal}: saving ${join(String(options.out), 'last')} and stopping (again to quit at once)\n`);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await train({
          corpus: options.corpus as string | undefined,
          out: options.out as string,
          arch: options.arch as string | undefined,
          preset: options.preset as string | undefined,
          model,
          tokenizer: options.tokenizer as string | undefined,
          vocabSize: options.vocabSize as number | undefined,
          hyperparameters,
          backend: options.backend as string,
          threads: options.threads as number | undefined,
          resume: options.resume === true,
          cacheDir: options.cacheDir as string | undefined,
          reporter: createProgressReporter(),
          signal: controller.signal,
        });
      } catch (error) {
        // A signal before the first step stops the run with nothing written: still the signal's exit code.
        if (!(received && error instanceof FerryError && error.code === 'INTERRUPTED')) throw error;
        process.stderr.write(`ferry: ${error.message}\n`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      if (received) process.exitCode = exitCodeOf(received);
    });
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
  const manifest = join(String(options.out), 'last', 'ferry.json');
  if (options.resume && existsSync(manifest)) {
    try {
      return (JSON.parse(readFileSync(manifest, 'utf8')) as { model?: { arch?: Arch } }).model?.arch;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Maps the shape flags onto the ModelConfig fields of the arch they apply to. */
function modelOverrides(options: Record<string, unknown>, arch: Arch | undefined): Record<string, unknown> {
  const only = (flag: string, which: Arch) => {
    // With no known arch, the arch itself is the error resolveModelConfig reports.
    if (arch !== undefined && arch !== which && options[flag.slice(2)] !== undefined) {
      throw new FerryError('INVALID_FLAG', `${flag} applies only to ${which} models, not ${arch}.`, {
        hint: which === 'lstm' ? 'For a Transformer, --embd sets the model width.' : `Drop ${flag}.`,
      });
    }
  };
  only('--hidden', 'lstm');
  only('--heads', 'transformer');
  only('--positional', 'transformer');
  const shared = { blockSize: options.blockSize, dropout: options.dropout, tieWeights: options.tieWeights };
  if (arch === 'lstm') {
    return { ...shared, numLayers: options.layers, hiddenSize: options.hidden, embeddingDim: options.embd };
  }
  return { ...shared, nLayer: options.layers, nEmbd: options.embd, nHead: options.heads, positional: options.positional };
}

function registerSample(program: Command): void {
  program
    .command('sample')
    .description('Generate text with tfjs from a checkpoint (a run dir means its best/), to see what a run has learned.')
    .argument('<dir>', 'checkpoint dir, or a run dir')
    .option('--prompt <text>', 'text to continue (empty: start from <|endoftext|> when the vocabulary has it)', '')
    .addOption(numeric('--max-tokens <n>', 'tokens to generate', positiveInt, 200))
    .addOption(numeric('--temperature <x>', 'sampling temperature; 0 is greedy', nonNegativeNumber, 0.8))
    .addOption(numeric('--top-k <n>', 'sample among the k most likely tokens; 0 = all', nonNegativeInt, 40))
    .addOption(numeric('--seed <n>', 'sampling seed', nonNegativeInt, 1))
    .option('--greedy', 'always take the most likely token (same as --temperature 0)')
    .option('--no-stop', 'keep going past <|endoftext|>')
    .addOption(new Option('--backend <name>', 'tfjs backend: auto | tfjs-node-gpu | tfjs-node | webgpu | wasm | cpu').default('auto'))
    .action(async (dir: string, options: Record<string, unknown>) => {
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
    .description('Perplexity of a checkpoint (a run dir means its best/) on a corpus; every token after the first is scored once.')
    .argument('<dir>', 'checkpoint dir, or a run dir')
    .requiredOption('--corpus <path>', 'text to score: a UTF-8 file, a .gz file or a directory of .txt files')
    .addOption(numeric('--batch-size <n>', 'windows per forward pass', positiveInt, 16))
    .option('--json', 'print the result as one JSON object')
    .option('--cache-dir <dir>', 'cache of tokenized corpora (default: $FERRY_CACHE_DIR or ~/.cache/ferry)')
    .addOption(new Option('--backend <name>', 'tfjs backend: auto | tfjs-node-gpu | tfjs-node | webgpu | wasm | cpu').default('auto'))
    .action(async (dir: string, options: Record<string, unknown>) => {
      const { selectBackend } = await import('./backend.ts');
      await selectBackend(options.backend as string);
      const { evaluateCheckpoint } = await import('./evaluate.ts');
      const result = await evaluateCheckpoint(dir, options.corpus as string, {
        batchSize: options.batchSize as number,
        cacheDir: options.cacheDir as string | undefined,
      });
      if (options.json) {
        console.log(JSON.stringify(result));
        return;
      }
      console.log(
        `${result.checkpointDir}: ${result.tokens.toLocaleString('en')} tokens, loss ${result.loss.toFixed(4)} nats/token ` +
          `(${result.bitsPerToken.toFixed(4)} bits), perplexity ${result.perplexity.toFixed(3)} [${result.seconds.toFixed(1)} s]`,
      );
    });
}
