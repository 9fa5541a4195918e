/** `ferry export`: the exporter loads tfjs and onnxruntime only when the command runs. */
import { Option, type Command } from 'commander';
import { FerryError } from '../errors.ts';

const TARGETS = ['cpu', 'wasm', 'webgpu'];
const ATTENTION_FORMS = ['decomposed', 'mha', 'gqa', 'attention23'];

function opsetFlag(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) {
    throw new FerryError('invalid_flag', `--opset must be a whole number, got "${value}".`, { hint: 'Run `ferry export --help` for the options.' });
  }
  return n;
}

export function registerExportCommands(program: Command): void {
  program
    .command('inspect')
    .description('Say what a tfjs model.json is (graph or layers model, inputs, outputs, ops or layers) and what ferry cannot convert yet.')
    .argument('<model.json>', 'a tfjs model.json (graph model or Layers model)')
    .option('--verbose', 'print the full trace of a failure')
    .action(async (file: string, flags: { verbose?: boolean }) => {
      try {
        const { formatSummary, inspectModel } = await import('./inspect.ts');
        console.log(formatSummary(file, await inspectModel(file)));
      } catch (error) {
        throw asUserError(error, flags.verbose === true, 'inspect', 'the model.json');
      }
    });
  program
    .command('export')
    .description('Convert a tfjs checkpoint, or any tfjs model.json (Layers or graph model), into a verified ONNX package dir.')
    .argument('<source>', 'checkpoint dir, training run dir (its best/ is used) or a tfjs model.json')
    .requiredOption('-o, --out <dir>', 'the package dir to write (replaced as a whole)')
    .addOption(new Option('--target <target>', 'the runtime the graph must run correctly on').choices(TARGETS).default('cpu'))
    .addOption(new Option('--attention <form>', 'Transformer attention: MatMul/Softmax, com.microsoft MHA/GQA, or opset-23 Attention').choices(ATTENTION_FORMS).default('decomposed'))
    .addOption(new Option('--quantize <kind>', 'also write onnx/model_quantized.onnx').choices(['int8']))
    .option('--fp16', 'also write onnx/model_fp16.onnx (fp16 weights)')
    .option('--opset <n>', 'ONNX opset (17-23; default 17, 23 for --attention attention23)', opsetFlag)
    .option('--no-verify', 'skip the comparison with tfjs')
    .option('--name <name>', "the model's name in ferry.json, which `ferry serve` serves it as (default: the --out dir's name)")
    .option('--plugin <module>', 'a converter module for layer classes ferry does not know (repeatable; docs/EXPORT.md)', (value: string, list: string[]) => [...list, value], [] as string[])
    .option('--triton-repo <dir>', 'also lay the package out as a Triton model repository: DIR/<name>/config.pbtxt and DIR/<name>/1/model.onnx')
    .option('--verbose', 'print the full trace of a failure')
    .action(async (source: string, flags: ExportFlags) => {
      try {
        await runExport(source, flags);
      } catch (error) {
        throw asUserError(error, flags.verbose === true, 'export', 'the model.json');
      }
    });

  program
    .command('quantize')
    .description('Write the int8 copy of an exported language-model package again from its fp32 file, checked against it (for packages whose int8 file predates 7-bit weights).')
    .argument('<package>', 'a package dir written by `ferry export`')
    .option('--verbose', 'print the full trace of a failure')
    .action(async (dir: string, flags: { verbose?: boolean }) => {
      try {
        const { requantizePackage } = await import('./requantize.ts');
        await requantizePackage(dir, (line) => console.log(line));
        console.log(`rewrote ${dir}`);
      } catch (error) {
        throw asUserError(error, flags.verbose === true, 'quantize', 'the package');
      }
    });
}

interface ExportFlags { out: string; target: string; attention: string; quantize?: string; fp16?: boolean; opset?: number; verify: boolean; name?: string; plugin: string[]; verbose?: boolean; tritonRepo?: string }

/** Every failure reaches the user as one FerryError line; the trace only with --verbose. */
function asUserError(error: unknown, verbose: boolean, command: string, subject: string): FerryError {
  if (verbose && error instanceof Error) console.error(error.stack);
  if (error instanceof FerryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FerryError('export_internal', `${command} failed: ${message.split('\n')[0]!.slice(0, 300)}`, {
    hint: verbose ? `This is a ferry bug: please report it with ${subject} and the trace above.` : `This is a ferry bug: run again with --verbose for the full trace, and report it with ${subject}.`,
    cause: error,
  });
}

async function runExport(source: string, flags: ExportFlags): Promise<void> {
  const { exportModel } = await import('./index.ts');
  if (flags.verify) {
    // tfjs runs the reference model: the wasm backend verifies a 10M model ~5x faster than cpu.
    const { selectBackend } = await import('../train/backend.ts');
    console.log(`tfjs backend: ${(await selectBackend('auto')).detail}`);
  }
  await exportModel({
    source,
    outDir: flags.out,
    target: flags.target as 'cpu',
    attention: flags.attention as 'decomposed',
    quantize: flags.quantize as 'int8' | undefined,
    fp16: flags.fp16 === true,
    opset: flags.opset,
    verify: flags.verify,
    name: flags.name,
    plugins: flags.plugin,
    log: (line) => console.log(line),
  });
  if (flags.tritonRepo !== undefined) {
    const { writeTritonRepo } = await import('./triton.ts');
    console.log(`wrote the Triton model repository entry ${await writeTritonRepo(flags.out, flags.tritonRepo)}`);
  }
}
