import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { FerryError } from './errors.ts';
import { registerTrainCommands } from './train/cli.ts';
import { registerExportCommands } from './export/cli.ts';
import { registerServeCommands } from './serve/cli.ts';
import { registerProbe } from './train/probe/cli.ts';

// Each stage registers its own subcommands; their modules import heavy libraries (tfjs, ORT)
// lazily inside the actions, so `ferry serve` never loads tfjs and `--help` is instant.
const program = new Command('ferry')
  .description('Train language models with TensorFlow.js, export them to ONNX, run them everywhere.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .showHelpAfterError()
  .exitOverride();

registerTrainCommands(program);
registerExportCommands(program);
registerServeCommands(program);
registerProbe(program);

try {
  // `ferry` alone is a question, not a mistake: help on stdout, exit 0.
  if (process.argv.length <= 2) program.outputHelp();
  else await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else if (error instanceof FerryError) {
    console.error(`ferry: ${error.toUserMessage()}`);
    process.exitCode = 1;
  } else {
    // What no check foresaw is a ferry bug; the user still gets one line, the trace on request.
    const message = error instanceof Error ? error.message : String(error);
    if (process.env.FERRY_DEBUG) console.error(error instanceof Error ? error.stack : error);
    console.error(`ferry: internal error: ${message.split('\n')[0]!.slice(0, 300)}`);
    console.error(`  This is a ferry bug: ${process.env.FERRY_DEBUG ? 'please report it with the trace above' : 'run again with FERRY_DEBUG=1 for the full trace, and report it'}.`);
    process.exitCode = 1;
  }
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
