// The contract between `run.ts` and a bench suite that compares switchyard with a peer other than the ws server
// (websocketd, websockify, the ws client): the suite starts its own processes, prints its own tables and hands
// back its verdicts, which run.ts lists in the one `targets` block of the run.

export interface Verdict {
  description: string;
  value: string;
  /** undefined: the runs needed for it failed. */
  met: boolean | undefined;
  /** Shown for information, not a target (never fails --check). */
  info?: boolean;
}

export interface SuiteSettings {
  /** Rounds of each comparison, the order of the compared programs mirrored every round. */
  rounds: number;
  /** Shorter windows, for smoke tests (`--quick`). */
  quick: boolean;
  warmupMs: number;
  durationMs: number;
  /** Progress and tables go here (stdout), one line or several per call. */
  write(text: string): void;
}

export interface SuiteReport {
  verdicts: Verdict[];
  /** One line per run that failed (`scenario round N program: why`); any makes the bench exit 1. */
  failures: string[];
}

export interface BenchSuite {
  /** Scenario ids this suite answers to in `--scenarios`, in the order they run. */
  readonly scenarios: readonly string[];
  /** One line per scenario for `--help`. */
  readonly help: Readonly<Record<string, string>>;
  /** Runs the selected scenarios (a non-empty subset of `scenarios`), always stopping every process it started. */
  run(selected: readonly string[], settings: SuiteSettings): Promise<SuiteReport>;
}
