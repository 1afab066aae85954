/**
 * Progress for long CLI work (write, optimize, vacuum, restore, checkpoint), on stderr so stdout
 * stays the result: on a terminal an animated line with the elapsed time, cleared when the work ends;
 * otherwise plain structured lines, `floe: op=write table=PATH phase=start` and `… phase=done
 * elapsed_ms=N` (JSON objects with `--json`); nothing with `--quiet`.
 */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface Progress {
  /** Ends the progress display (`ok`: the work succeeded). */
  end(ok: boolean, fields?: Record<string, string | number | boolean | null>): void;
}

export interface ProgressOptions {
  quiet?: boolean;
  json?: boolean;
  stream?: NodeJS.WriteStream;
  /** Redraw interval on a terminal (ms). */
  intervalMs?: number;
}

const logfmt = (v: string | number | boolean | null): string => {
  const s = String(v);
  return /^[A-Za-z0-9_./:@+-]+$/.test(s) ? s : JSON.stringify(s);
};

export function startProgress(op: string, target: string, o: ProgressOptions = {}): Progress {
  const stream = o.stream ?? process.stderr;
  const started = Date.now();
  if (o.quiet) return { end: () => undefined };
  if (!stream.isTTY || o.json) {
    const line = (fields: Record<string, string | number | boolean | null>): void => {
      const all = { op, table: target, ...fields };
      stream.write(o.json ? `${JSON.stringify({ progress: all })}\n` : `floe: ${Object.entries(all).map(([k, v]) => `${k}=${logfmt(v)}`).join(' ')}\n`);
    };
    line({ phase: 'start' });
    return { end: (ok, fields = {}) => line({ phase: ok ? 'done' : 'failed', elapsed_ms: Date.now() - started, ...fields }) };
  }
  let i = 0;
  const draw = (): void => {
    const s = ((Date.now() - started) / 1000).toFixed(1);
    stream.write(`\r${FRAMES[i++ % FRAMES.length]} ${op} ${target} … ${s} s\x1b[K`);
  };
  draw();
  const timer = setInterval(draw, o.intervalMs ?? 100);
  timer.unref();
  return {
    end: () => {
      clearInterval(timer);
      stream.write('\r\x1b[K');
    },
  };
}
