import cliProgress from 'cli-progress';

/** What the trainer tells whoever watches: a bar on a terminal, log lines otherwise. */
export interface ProgressReporter {
  /** `logInterval`: steps between plain log lines (the bar redraws on its own). */
  begin(startStep: number, totalSteps: number, logInterval: number): void;
  /** After every optimizer step: that step's loss, the learning rate used, throughput. */
  update(state: StepState): void;
  /** A line that must not be lost between bar redraws (eval results, checkpoints, warnings). */
  message(line: string): void;
  end(): void;
}

export interface StepState {
  step: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** A live bar when true; plain lines every `logInterval` steps when false. Default: stream.isTTY. */
  interactive?: boolean;
}

export function createProgressReporter(options: ProgressOptions = {}): ProgressReporter {
  const stream = options.stream ?? process.stdout;
  return (options.interactive ?? stream.isTTY === true)
    ? createBarReporter(stream)
    : createLineReporter((line) => stream.write(`${line}\n`));
}

function createBarReporter(stream: NodeJS.WriteStream): ProgressReporter {
  const bars = new cliProgress.MultiBar(
    {
      stream,
      format: 'step {value}/{total} |{bar}| loss {loss} | lr {lr} | {tokensPerSecond} tok/s | ETA {eta_formatted}',
      barsize: 30,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | undefined;
  return {
    begin(startStep, totalSteps) {
      bar = bars.create(totalSteps, startStep, { loss: '-', lr: '-', tokensPerSecond: '-' });
    },
    update({ step, loss, lr, tokensPerSecond }) {
      bar?.update(step, { loss: loss.toFixed(4), lr: lr.toExponential(2), tokensPerSecond: Math.round(tokensPerSecond) });
    },
    message(line) {
      // The bar flushes its log buffer only while it redraws, so outside it lines go straight out.
      if (bar) bars.log(`${line}\n`);
      else stream.write(`${line}\n`);
    },
    end() {
      bars.update(); // flush lines logged since the last redraw
      bars.stop();
      bar = undefined;
    },
  };
}

/** Plain lines for logs and pipes; `write` is where they go (tests collect them). */
export function createLineReporter(write: (line: string) => void): ProgressReporter {
  let logInterval = 1;
  let total = 0;
  let firstStep = 0;
  let started = 0;
  let lossSum = 0;
  let lossCount = 0;
  return {
    begin(startStep, totalSteps, interval) {
      [firstStep, total, logInterval, started] = [startStep, totalSteps, interval, performance.now()];
    },
    update({ step, loss, lr, tokensPerSecond }) {
      lossSum += loss;
      lossCount += 1;
      if (step % logInterval !== 0 && step !== total) return;
      const secondsPerStep = (performance.now() - started) / 1000 / Math.max(1, step - firstStep);
      write(
        `step ${step}/${total} | loss ${(lossSum / lossCount).toFixed(4)} | lr ${lr.toExponential(2)} | ` +
          `${Math.round(tokensPerSecond)} tok/s | ETA ${formatDuration(secondsPerStep * (total - step))}`,
      );
      lossSum = 0;
      lossCount = 0;
    },
    message: write,
    end() {},
  };
}

/** Progress of a count (eval's tokens): a bar on a terminal, else a line at every tenth; on stderr, so stdout keeps the result. */
export function createCountReporter(label: string, unit: string, stream: NodeJS.WriteStream = process.stderr): {
  update: (done: number, total: number) => void;
  end: () => void;
} {
  const started = performance.now();
  if (stream.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${label} |{bar}| {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}`, barsize: 30, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let begun = false;
    return {
      update(done, total) {
        if (!begun) bar.start(total, 0);
        begun = true;
        bar.update(done);
      },
      end: () => (begun ? bar.stop() : undefined),
    };
  }
  let lastTenth = 0;
  return {
    update(done, total) {
      const tenth = Math.floor((10 * done) / total);
      if (tenth <= lastTenth) return;
      lastTenth = tenth;
      const seconds = (performance.now() - started) / 1000;
      stream.write(`${label}: ${tenth * 10}% (${done.toLocaleString('en')}/${total.toLocaleString('en')} ${unit}, ETA ${formatDuration((seconds * (total - done)) / done)})\n`);
    },
    end() {},
  };
}

export function formatDuration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const [h, m, s] = [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), whole % 60];
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}
