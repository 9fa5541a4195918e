/**
 * Number flags for every `ferry` command, checked so that one run reports every bad flag at once:
 * a parser returns an InvalidFlag in place of the value instead of throwing at the first, and
 * the command's action collects them all (with its own checks) into one FerryError.
 */
import { Option } from 'commander';
import { FerryError } from './errors.ts';

/** What a flag's parser returns for a value it refuses: the problem, in the flag's words. */
export class InvalidFlag {
  constructor(readonly problem: string) {}
}

export type NumberParser = (value: string) => number;

export interface NumberRule {
  /** What the value must be, as the message says it: "a whole number above 0". */
  expected: string;
  integer: boolean;
  accept: (n: number) => boolean;
}

export const POSITIVE_INT: NumberRule = { expected: 'a whole number above 0', integer: true, accept: (n) => n > 0 };
export const NON_NEGATIVE_INT: NumberRule = { expected: 'a whole number >= 0', integer: true, accept: (n) => n >= 0 };
export const POSITIVE_NUMBER: NumberRule = { expected: 'a number above 0', integer: false, accept: (n) => n > 0 };
export const NON_NEGATIVE_NUMBER: NumberRule = { expected: 'a number >= 0', integer: false, accept: (n) => n >= 0 };
export const UNIT_INTERVAL: NumberRule = { expected: 'a number in [0, 1)', integer: false, accept: (n) => n >= 0 && n < 1 };
export const OPEN_UNIT_INTERVAL: NumberRule = { expected: 'a number strictly between 0 and 1', integer: false, accept: (n) => n > 0 && n < 1 };

/** The parser of a number flag: the number, or an InvalidFlag that names the flag and the value given. */
export function numberFlag(flag: string, rule: NumberRule): NumberParser {
  return (value: string) => {
    const n = value.trim() === '' ? Number.NaN : Number(value);
    if (!Number.isFinite(n) || (rule.integer && !Number.isInteger(n)) || !rule.accept(n)) {
      return new InvalidFlag(`${flag} must be ${rule.expected}, got "${value}"`) as unknown as number;
    }
    return n;
  };
}

/** The problems of the flags whose parsers refused their values. */
export function invalidFlags(options: Record<string, unknown>): string[] {
  return Object.values(options).filter((value): value is InvalidFlag => value instanceof InvalidFlag).map((value) => value.problem);
}

/** The options with each refused value left out, so that the other checks can still run on the rest. */
export function withoutInvalidFlags(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => !(value instanceof InvalidFlag)));
}

/** One error for every problem of a command's flags; `command` names the --help to read. */
export function invalidOptions(problems: readonly string[], command: string): FerryError {
  const message = problems.length === 1 ? `${problems[0]}.` : `${problems.length} options are invalid:\n  - ${problems.join('\n  - ')}`;
  return new FerryError('invalid_flag', message, { hint: `Run \`ferry ${command} --help\` for the options.` });
}

/** Throws one error naming every refused flag, if any. */
export function rejectInvalidFlags(options: Record<string, unknown>, command: string): void {
  const problems = invalidFlags(options);
  if (problems.length > 0) throw invalidOptions(problems, command);
}

/** A commander option whose value is a number checked by `rule` (named by its flag when refused). */
export function numericOption(flags: string, description: string, rule: NumberRule, defaultValue?: number): Option {
  const option = new Option(flags, description).argParser(numberFlag(flags.split(' ')[0]!, rule));
  return defaultValue === undefined ? option : option.default(defaultValue);
}
