// Splitting a command line into flags and positionals, for every subcommand: `--name value`, `--name=value`, a
// one-letter alias (`-h`, `-H value`), `--` ends the flags. The caller's table says which flags exist and which take
// a value; what a value means is the caller's business. Pure: throws ConfigError naming the flag.
import { ConfigError } from '../errors.js';
import { closestName } from './suggest.js';
import { describeValue } from './validate.js';

export interface ArgvFlagTable<Flag> {
  /** The flag spelled `--name`, if there is one. */
  long(name: string): Flag | undefined;
  /** The flag spelled `-x` (`letters` is what follows the dash), if there is one. */
  short(letters: string): Flag | undefined;
  /** Every long name, for "did you mean". */
  readonly names: readonly string[];
  /** What the value looks like in messages (`FILE`); undefined for a switch. */
  valueName(flag: Flag): string | undefined;
  /** A switch that also takes `--name=true` / `--name=false` (a config leaf's boolean). */
  takesBooleanText?(flag: Flag): boolean;
}

export interface ArgvOptions {
  /** `exec PROGRAM -n`: the first positional and everything after it are positionals. */
  readonly stopAtPositional?: boolean;
  /** Short flags are one letter and may carry their value attached, as curl takes them: `-H'X: y'`. */
  readonly attachedShortValues?: boolean;
}

export interface ArgvFlag<Flag> {
  readonly flag: Flag;
  /** As written, for messages: '--port', '-H'. */
  readonly written: string;
  /** true for a switch given without a value. */
  readonly value: string | true;
}

export function splitArgv<Flag>(
  args: readonly string[], table: ArgvFlagTable<Flag>, options: ArgvOptions = {},
): { flags: ArgvFlag<Flag>[]; positionals: string[] } {
  const suggestion = (name: string): string => {
    const guess = closestName(name, table.names);
    return guess === undefined ? '' : ` (did you mean "--${guess}"?)`;
  };
  const flags: ArgvFlag<Flag>[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (options.stopAtPositional === true) {
        positionals.push(...args.slice(i));
        break;
      }
      positionals.push(arg);
      continue;
    }
    let flag: Flag | undefined;
    let written: string;
    let inline: string | undefined;
    // What "did you mean" compares: the long name, or everything after a single dash.
    let typed = arg.slice(1);
    if (arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      typed = equals === -1 ? arg.slice(2) : arg.slice(2, equals);
      inline = equals === -1 ? undefined : arg.slice(equals + 1);
      written = `--${typed}`;
      flag = table.long(typed);
    } else if (options.attachedShortValues === true) {
      written = arg.slice(0, 2);
      flag = table.short(arg[1]!);
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      written = arg;
      flag = table.short(arg.slice(1));
    }
    if (flag === undefined) throw new ConfigError(written, `unknown flag${suggestion(typed)}`);
    const valueName = table.valueName(flag);
    if (valueName === undefined) {
      if (inline === undefined) flags.push({ flag, written, value: true });
      else if (table.takesBooleanText?.(flag) === true && (inline === 'true' || inline === 'false')) flags.push({ flag, written, value: inline });
      else throw new ConfigError(written, `takes no value (got ${describeValue(inline)})`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      // "--port --host x" is a missing value, not a port called "--host"; "-5" is a (bad) value.
      if (next === undefined || next.startsWith('--')) throw new ConfigError(written, `needs a value (${written} ${valueName})`);
      value = next;
      i++;
    }
    flags.push({ flag, written, value });
  }
  return { flags, positionals };
}
