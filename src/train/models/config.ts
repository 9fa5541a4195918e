import { FerryError } from '../../errors.ts';

/** Model hyperparameters: one plain object, saved verbatim as `model` in ferry.json (docs/FORMATS.md). */
export type LstmConfig = {
  arch: 'lstm';
  vocabSize: number;
  embeddingDim: number;
  hiddenSize: number;
  numLayers: number;
  dropout: number;
  tieWeights: boolean;
  /** Training window; an LSTM itself runs on any length. */
  blockSize: number;
};

export type TransformerConfig = {
  arch: 'transformer';
  vocabSize: number;
  /** Context length: the most positions the model can see. */
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  dropout: number;
  /** Added to the input (learned, sinusoidal) or applied in every block's attention (rope, alibi). */
  positional: Positional;
  tieWeights: boolean;
};

export const POSITIONALS = ['learned', 'sinusoidal', 'rope', 'alibi'] as const;
export type Positional = (typeof POSITIONALS)[number];

export type ModelConfig = LstmConfig | TransformerConfig;
export type Arch = ModelConfig['arch'];
export const ARCHS: readonly Arch[] = ['lstm', 'transformer'];

/** A config without its vocabulary size, which comes from the tokenizer. */
export type LstmShape = Omit<LstmConfig, 'vocabSize'>;
export type TransformerShape = Omit<TransformerConfig, 'vocabSize'>;

export type Preset = {
  description: string;
  /** The tokenizer the preset was designed for, and its vocabulary cap (word level). */
  tokenizer?: 'char' | 'word' | 'bpe';
  vocabSize?: number;
  lstm?: LstmShape;
  transformer?: TransformerShape;
};

export const PRESETS: Readonly<Record<string, Preset>> = {
  tiny: {
    description: 'A few thousand parameters, for tests and smoke runs.',
    lstm: { arch: 'lstm', embeddingDim: 16, hiddenSize: 32, numLayers: 1, dropout: 0, tieWeights: false, blockSize: 16 },
    transformer: {
      arch: 'transformer', blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0,
      positional: 'learned', tieWeights: false,
    },
  },
  'nanogpt-cpu': {
    description: "nanoGPT's CPU configuration (4 layers, 4 heads, width 128, context 64, tied embedding).",
    tokenizer: 'char',
    transformer: {
      arch: 'transformer', blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0,
      positional: 'learned', tieWeights: true,
    },
  },
  'lstm-char': {
    description: 'A character LSTM of about the size of nanogpt-cpu (embedding 64, two layers of 256).',
    tokenizer: 'char',
    lstm: { arch: 'lstm', embeddingDim: 64, hiddenSize: 256, numLayers: 2, dropout: 0, tieWeights: false, blockSize: 64 },
  },
  'lstm-classic': {
    description: 'The classic word-level LSTM LM: 10,000 words, embedding 128, two LSTM layers of 128.',
    tokenizer: 'word',
    vocabSize: 10_000,
    lstm: { arch: 'lstm', embeddingDim: 128, hiddenSize: 128, numLayers: 2, dropout: 0, tieWeights: false, blockSize: 35 },
  },
};

/** The preset an arch gets when none is named. */
export const DEFAULT_PRESETS: Readonly<Record<Arch, string>> = { lstm: 'lstm-char', transformer: 'nanogpt-cpu' };

const CONFIG_KEYS: Readonly<Record<Arch, readonly string[]>> = {
  lstm: ['arch', 'vocabSize', 'embeddingDim', 'hiddenSize', 'numLayers', 'dropout', 'tieWeights', 'blockSize'],
  transformer: ['arch', 'vocabSize', 'blockSize', 'nLayer', 'nHead', 'nEmbd', 'dropout', 'positional', 'tieWeights'],
};

export type ResolveModelConfigOptions = {
  /** 'lstm' | 'transformer'; may be left out when the preset has only one arch. */
  arch?: string;
  preset?: string;
  /** Hyperparameters that replace the preset's (e.g. from CLI flags); undefined values are ignored. */
  overrides?: Record<string, unknown>;
  vocabSize: number;
};

/** Builds a complete, validated ModelConfig from an arch, a preset, overrides and the tokenizer's vocabulary size. */
export function resolveModelConfig(options: ResolveModelConfigOptions): ModelConfig {
  return validateModelConfig(mergeModelShape(options));
}

/** The preset's shape with the overrides on top, not yet validated (unknown arch or preset throw). */
export function mergeModelShape(options: ResolveModelConfigOptions): Record<string, unknown> {
  const arch = resolveArch(options.arch, options.preset);
  const presetName = options.preset ?? DEFAULT_PRESETS[arch];
  const preset = PRESETS[presetName];
  if (preset === undefined) {
    throw new FerryError('unknown_preset', `Unknown preset "${presetName}".`, {
      hint: `Valid presets: ${describePresets()}.`,
    });
  }
  const shape = preset[arch];
  if (shape === undefined) {
    throw new FerryError('preset_arch_mismatch', `Preset "${presetName}" has no ${arch} model.`, {
      hint: `Presets for ${arch}: ${presetNamesFor(arch).join(', ')}.`,
    });
  }
  const overrides = Object.fromEntries(
    Object.entries(options.overrides ?? {}).filter(([, value]) => value !== undefined),
  );
  if ('arch' in overrides && overrides.arch !== arch) {
    throw new FerryError('invalid_model_config', `The override arch "${String(overrides.arch)}" contradicts arch "${arch}".`);
  }
  return { ...shape, ...overrides, vocabSize: options.vocabSize };
}

function resolveArch(arch: string | undefined, presetName: string | undefined): Arch {
  if (arch !== undefined) {
    if (!(ARCHS as readonly string[]).includes(arch)) {
      throw new FerryError('unknown_arch', `Unknown architecture "${arch}".`, { hint: `Valid architectures: ${ARCHS.join(', ')}.` });
    }
    return arch as Arch;
  }
  const preset = presetName === undefined ? undefined : PRESETS[presetName];
  if (presetName !== undefined && preset === undefined) {
    throw new FerryError('unknown_preset', `Unknown preset "${presetName}".`, { hint: `Valid presets: ${describePresets()}.` });
  }
  const archs = preset === undefined ? [] : ARCHS.filter((candidate) => preset[candidate] !== undefined);
  if (archs.length !== 1) {
    throw new FerryError('missing_arch', presetName === undefined
      ? 'No architecture given.'
      : `Preset "${presetName}" exists for several architectures (${archs.join(', ')}).`, {
      hint: `Pass --arch ${ARCHS.join('|')}.`,
    });
  }
  return archs[0]!;
}

function presetNamesFor(arch: Arch): string[] {
  return Object.keys(PRESETS).filter((name) => PRESETS[name]![arch] !== undefined);
}

function describePresets(): string {
  return Object.entries(PRESETS)
    .map(([name, preset]) => `${name} (${ARCHS.filter((arch) => preset[arch] !== undefined).join('/')})`)
    .join(', ');
}

/**
 * Checks that `value` is a complete ModelConfig with sensible values and returns it as one
 * (also used on the `model` object of a checkpoint's ferry.json).
 */
export function validateModelConfig(value: unknown): ModelConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('the model config is not an object');
  }
  const record = value as Record<string, unknown>;
  const arch = record.arch;
  if (typeof arch !== 'string' || !(ARCHS as readonly string[]).includes(arch)) {
    throw new FerryError('unknown_arch', `Unknown architecture "${String(arch)}".`, { hint: `Valid architectures: ${ARCHS.join(', ')}.` });
  }
  const keys = CONFIG_KEYS[arch as Arch];
  const unknown = Object.keys(record).filter((key) => !keys.includes(key));
  if (unknown.length > 0) {
    throw invalid(`unknown ${arch} hyperparameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`,
      `Valid ones: ${keys.filter((key) => key !== 'arch').join(', ')}.`);
  }
  const missing = keys.filter((key) => record[key] === undefined);
  if (missing.length > 0) throw invalid(`missing ${missing.join(', ')}`);

  const positiveInt = (key: string): number => {
    const n = record[key];
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) throw invalid(`${key} must be a positive integer, got ${JSON.stringify(n)}`);
    return n;
  };
  const dropout = record.dropout;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    throw invalid(`dropout must be a number in [0, 1), got ${JSON.stringify(dropout)}`);
  }
  if (typeof record.tieWeights !== 'boolean') throw invalid(`tieWeights must be true or false, got ${JSON.stringify(record.tieWeights)}`);
  const tieWeights = record.tieWeights;
  const vocabSize = positiveInt('vocabSize');
  const blockSize = positiveInt('blockSize');

  if (arch === 'lstm') {
    const config: LstmConfig = {
      arch, vocabSize, embeddingDim: positiveInt('embeddingDim'), hiddenSize: positiveInt('hiddenSize'),
      numLayers: positiveInt('numLayers'), dropout, tieWeights, blockSize,
    };
    if (tieWeights && config.hiddenSize !== config.embeddingDim) {
      throw invalid(`tieWeights needs hiddenSize == embeddingDim, got ${config.hiddenSize} and ${config.embeddingDim}`,
        'Set both to the same value, or turn weight tying off.');
    }
    return config;
  }
  const positional = record.positional as Positional;
  if (!POSITIONALS.includes(positional)) {
    throw invalid(`positional must be ${POSITIONALS.map((p) => `"${p}"`).join(', ')}, got ${JSON.stringify(positional)}`);
  }
  const config: TransformerConfig = {
    arch: 'transformer', vocabSize, blockSize, nLayer: positiveInt('nLayer'), nHead: positiveInt('nHead'),
    nEmbd: positiveInt('nEmbd'), dropout, positional, tieWeights,
  };
  if (config.nEmbd % config.nHead !== 0) {
    throw invalid(`${config.nHead} heads do not divide the model width ${config.nEmbd}`,
      'Choose nEmbd a multiple of nHead (e.g. nEmbd 128 with 4 heads).');
  }
  if (positional === 'rope' && (config.nEmbd / config.nHead) % 2 !== 0) {
    throw invalid(`RoPE rotates pairs of features, and the head size ${config.nEmbd / config.nHead} is odd`,
      'Choose nEmbd / nHead even.');
  }
  return config;
}

function invalid(problem: string, hint?: string): FerryError {
  return new FerryError('invalid_model_config', `Invalid model config: ${problem}.`, { hint });
}

/** Number of trainable parameters a config gives (for logs; equals model.countParams()). */
export function countParameters(config: ModelConfig): number {
  const { vocabSize: v } = config;
  if (config.arch === 'lstm') {
    const { embeddingDim: e, hiddenSize: h, numLayers } = config;
    let lstm = 0;
    for (let layer = 0; layer < numLayers; layer++) lstm += 4 * h * ((layer === 0 ? e : h) + h + 1);
    return v * e + lstm + (config.tieWeights ? 0 : h * v + v);
  }
  const { nEmbd: d, nLayer, blockSize } = config;
  const block = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
  const positions = config.positional === 'learned' ? blockSize * d : 0;
  return v * d + positions + nLayer * block + 2 * d + (config.tieWeights ? 0 : d * v + v);
}
