import type { Command } from 'commander';
import { numberFlag, rejectInvalidFlags, type NumberRule } from '../cli-flags.ts';
import { FerryError } from '../errors.ts';

/** Any number: the request schema checks each sampling field's range, as the HTTP API does. */
const ANY_NUMBER: NumberRule = { expected: 'a number', integer: false, accept: () => true };

const SAMPLING_FLAGS: [flag: string, field: string, description: string][] = [
  ['--max-tokens <n>', 'max_tokens', 'most tokens to generate (default: the model\'s, else 16)'],
  ['--temperature <t>', 'temperature', '0 = greedy; higher = more random (default: the model\'s, else 1)'],
  ['--top-k <k>', 'top_k', 'sample among the k most likely tokens (0 = all)'],
  ['--top-p <p>', 'top_p', 'sample among the most likely tokens holding probability p'],
  ['--min-p <p>', 'min_p', 'drop tokens less likely than p times the top one'],
  ['--repetition-penalty <r>', 'repetition_penalty', '>1 discourages tokens already seen'],
  ['--seed <n>', 'seed', 'same seed, same text'],
];

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('Serve ONNX package dirs over an OpenAI-compatible HTTP API (default: every package under models/)')
    .argument('[dirs...]', 'ONNX package dirs, or folders holding them', [])
    .option('--port <port>', 'port to listen on', process.env.PORT ?? '8080')
    .option('--host <host>', 'address to bind (0.0.0.0 for every interface)', '127.0.0.1')
    .option('--api-key <key>', 'require `Authorization: Bearer <key>` on every route but /healthz and /readyz (default: $FERRY_API_KEY)')
    .option('--public-playground', 'with --api-key, leave the playground and its package files (the weights) open to anyone')
    .option('--cors-origin <origins>', 'origins (comma-separated, or *) whose pages may call the API (default: none)')
    .option('--allow-host <hosts>', 'hostnames (comma-separated) accepted in the Host header on loopback without --api-key, besides localhost')
    .option('--max-batch <n>', 'most sequences decoded together per model', '32')
    .option('--max-queue <n>', 'most requests waiting per model before 429', '64')
    .option('--device <device>', 'auto, cpu, cuda, webgpu or wasm', 'auto')
    .option('--precision <precision>', 'fp32, int8 or fp16 (the package must hold it)', 'fp32')
    .option('--max-tokens-limit <n>', 'largest max_tokens a request may ask for', '4096')
    .option('--max-prompt-tokens <n>', 'longest prompt in tokens', '8192')
    .option('--timeout <seconds>', 'longest a request may take, queue time included', '300')
    .option('--threads <n>', 'intra-op threads per model (0: onnxruntime decides)', '0')
    .option('--batch-delay-ms <ms>', 'longest a /v2 inference request waits for others to share its run (plain models)', '2')
    .option('--drain-seconds <seconds>', 'on SIGTERM or SIGINT, how long running requests may take to finish (/readyz and new requests answer 503 meanwhile)', '30')
    .option('--lanes <n>', 'batches per model decoded in turn, so sampling and streaming overlap the model runs (--max-batch and --max-queue are split between them)', '1')
    .option('--prefill-chunk <n>', 'a longer prompt is prefilled in parts of this many tokens, between decode steps, so that running streams keep streaming', '256')
    .option('--verbose', 'also log why a device was not used')
    .action(async (dirs: string[], options: Record<string, string | undefined>) => {
      const { startServer } = await import('./node.ts');
      const apiKey = bearerKey(options.apiKey ?? process.env.FERRY_API_KEY);
      const log = (message: string) => console.error(`ferry: ${message}`);
      const drainMs = integer(options.drainSeconds!, '--drain-seconds', 0, 86_400) * 1000;
      const server = await startServer({
        dirs: dirs.length ? dirs : ['models'],
        port: integer(options.port!, '--port', 0, 65535),
        host: options.host!,
        apiKey,
        publicPlayground: options.publicPlayground !== undefined,
        corsOrigins: list(options.corsOrigin),
        allowHosts: list(options.allowHost),
        maxBatch: integer(options.maxBatch!, '--max-batch', 1, 4096),
        maxQueue: integer(options.maxQueue!, '--max-queue', 0, 1_000_000),
        device: options.device!,
        precision: precision(options.precision!),
        maxTokens: integer(options.maxTokensLimit!, '--max-tokens-limit', 1, 10_000_000),
        maxPromptTokens: integer(options.maxPromptTokens!, '--max-prompt-tokens', 1, 10_000_000),
        timeoutMs: integer(options.timeout!, '--timeout', 1, 86_400) * 1000,
        threads: integer(options.threads!, '--threads', 0, 1024) || undefined,
        lanes: integer(options.lanes!, '--lanes', 1, 64),
        prefillChunk: integer(options.prefillChunk!, '--prefill-chunk', 1, 10_000_000),
        batchDelayMs: integer(options.batchDelayMs!, '--batch-delay-ms', 0, 60_000),
        log,
        verbose: options.verbose ? log : undefined,
      });
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          log(`${signal}: draining (up to ${drainMs / 1000} s for running requests), then exiting`);
          void server.close(drainMs).then(() => process.exit(0));
        });
      }
      log(`listening on ${server.url} (loading models; /readyz turns 200 when they are warm)`);
      const [models, plainModels] = await Promise.all([server.models, server.plainModels]).catch(async (error: unknown) => {
        await server.close();
        throw error;
      });
      const auth = apiKey ? ` -H 'authorization: Bearer ${apiKey}'` : '';
      console.log(`ferry: serving ${[...models.map((m) => m.id), ...plainModels.map((m) => m.name)].join(', ')} at ${server.url}/v1 and ${server.url}/v2`);
      const first = models[0];
      if (first) console.log(`try:\n  curl ${server.url}/v1/completions -H 'content-type: application/json'${auth} \\\n    -d '{"model": "${first.id}", "prompt": "ROMEO:", "max_tokens": 60}'`);
      else console.log(`try:\n  curl ${server.url}/v2/models/${plainModels[0]!.name}${auth}`);
    });

  program
    .command('infer')
    .description('run a plain ONNX package (an image classifier, an encoder, ...) once on tensors from files, locally (no HTTP)')
    .argument('<dir>', 'ONNX package dir written by `ferry export` (arch "model")')
    .requiredOption('--input <name=file...>', 'an input from a .npy file, or .json (a nested array, or {"datatype", "shape", "data"}); one per model input')
    .option('--output-dir <dir>', 'write each output as DIR/<name>.npy instead of printing them as a /v2 response')
    .option('--device <device>', 'auto, cpu, cuda, webgpu or wasm', 'auto')
    .option('--precision <precision>', 'fp32, int8 or fp16', 'fp32')
    .action(async (dir: string, options: { input: string[]; outputDir?: string; device: string; precision: string }) => {
      const { inferCommand } = await import('./v2/infer-command.ts');
      console.log(await inferCommand(dir, { inputs: options.input, outputDir: options.outputDir, device: options.device, precision: precision(options.precision), log: (m) => console.error(`ferry: ${m}`) }));
    });

  const generate = program
    .command('generate')
    .description('Generate text from an ONNX package dir locally (no HTTP).')
    .argument('<dir>', 'ONNX package dir written by `ferry export`')
    .requiredOption('--prompt <text>', 'text to continue ("" starts from <|endoftext|> when the model has it)')
    .option('--stop <text...>', 'end the text before any of these strings')
    .option('--stream', 'print the text as it is generated')
    .option('--device <device>', 'auto, cpu, cuda, webgpu or wasm', 'auto')
    .option('--precision <precision>', 'fp32, int8 or fp16', 'fp32')
    .option('--verbose', 'also log why a device was not used');
  for (const [flag, , description] of SAMPLING_FLAGS) generate.option(flag, description, numberFlag(flag.split(' ')[0]!, ANY_NUMBER));
  generate.action(async (dir: string, options: Record<string, string | string[] | boolean | number | undefined>) => {
    rejectInvalidFlags(options, 'generate');
    const { generateText } = await import('./generate.ts');
    const body: Record<string, unknown> = { prompt: options.prompt, stop: options.stop };
    for (const [flag, field] of SAMPLING_FLAGS) {
      const key = camel(flag);
      if (options[key] !== undefined) body[field] = options[key];
    }
    const flagOf = Object.fromEntries(SAMPLING_FLAGS.map(([flag, field]) => [field, flag.split(' ')[0]!]));
    await generateText(dir, body, {
      device: options.device as string,
      precision: precision(options.precision as string),
      stream: options.stream === true,
      flagOf,
      write: (text) => process.stdout.write(text),
      log: (message) => console.error(`ferry: ${message}`),
      verbose: options.verbose ? (message) => console.error(`ferry: ${message}`) : undefined,
    });
  });
}

/** `a, b` -> ['a', 'b']; undefined stays undefined. */
function list(value: string | undefined): string[] | undefined {
  return value?.split(',').map((item) => item.trim()).filter(Boolean);
}

/** A key a client can send: the characters of an RFC 6750 bearer token. */
function bearerKey(key: string | undefined): string | undefined {
  if (key === undefined || /^[A-Za-z0-9._~+/-]+=*$/.test(key)) return key;
  throw new FerryError('bad_flag', '--api-key (or $FERRY_API_KEY) may hold only letters, digits and ._~+/- (then = padding)', { hint: 'e.g. `openssl rand -hex 32`' });
}

function camel(flag: string): string {
  return flag.split(' ')[0]!.slice(2).replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}

function integer(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new FerryError('bad_flag', `${flag} must be an integer from ${min} to ${max}, got "${value}"`, { hint: 'see `ferry serve --help`' });
  }
  return n;
}

function precision(value: string): 'fp32' | 'int8' | 'fp16' {
  if (value === 'fp32' || value === 'int8' || value === 'fp16') return value;
  throw new FerryError('bad_flag', `--precision must be fp32, int8 or fp16, got "${value}"`);
}
