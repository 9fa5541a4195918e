import type { Command } from 'commander';

export function registerServeCommands(program: Command): void {
  void program;
}
