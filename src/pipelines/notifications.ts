/**
 * Pipeline notifications (`notifications:` in pipeline.yml, Databricks' list-of-alerts shape):
 *
 *   notifications:
 *     - alerts: [on-update-failure, on-flow-failure, on-expectation-violation, on-update-duration]
 *       webhook: https://hooks.example.com/floe       # POST of the JSON body below
 *       headers: { X-Token: abc }                      # optional, sent with the POST
 *       command: ./notify.sh                           # optional: run by the shell, the body on stdin
 *       expectation_threshold: 0.05                    # on-expectation-violation: failed / checked > 5%
 *       max_duration_seconds: 600                      # on-update-duration: an update running longer
 *       retries: 3                                     # after the first attempt (default 3)
 *       backoff_ms: 500                                # first wait, doubled each retry (default 500)
 *       timeout_ms: 10000                              # per attempt (default 10 s)
 *       ui_url: http://127.0.0.1:4949/                 # where the link points (default FLOE_UI_URL, else this)
 *
 * The body (`NotificationBody`): `alert`, `pipeline`, `pipeline_id`, `update`, `update_state`, `flow`,
 * `dataset`, `error` ({ code, message }), `expectation` ({ name, dataset, passed, failed,
 * failure_rate, threshold }), `duration_ms`, `message`, `timestamp`, `link` (the update's events in
 * `floe ui`). One notification per failure per alert: an update failure, each failed flow, each
 * expectation of each flow above the threshold, an update over its time limit (once).
 *
 * The notifier is driven by the update's events (it listens to the event log as it is written);
 * deliveries run in the background with retries and exponential backoff, and the runner waits for
 * them when the update ends. Every delivery is recorded in the event log (`event_type`
 * `notification`, WARN when it failed); a failed delivery never fails the pipeline.
 */
import { spawn } from 'node:child_process';
import { FloeError } from '../errors.js';
import type { EventInput, PipelineEvent } from './event-log.js';

export const ALERTS = ['on-update-failure', 'on-flow-failure', 'on-expectation-violation', 'on-update-duration'] as const;
export type Alert = (typeof ALERTS)[number];

export interface NotificationSpec {
  alerts: Alert[];
  webhook?: string;
  headers?: Record<string, string>;
  command?: string;
  expectationThreshold?: number;
  maxDurationSeconds?: number;
  retries: number;
  backoffMs: number;
  timeoutMs: number;
  uiUrl?: string;
}

export interface NotificationBody {
  alert: Alert;
  pipeline: string;
  pipeline_id: string;
  update: string;
  update_state: string;
  flow: string | null;
  dataset: string | null;
  error: { code: string | null; message: string } | null;
  expectation: { name: string; dataset: string; passed: number; failed: number; failure_rate: number; threshold: number } | null;
  duration_ms: number | null;
  message: string;
  timestamp: string;
  link: string;
}

const KEYS = new Set(['alerts', 'webhook', 'headers', 'command', 'expectation_threshold', 'max_duration_seconds', 'retries', 'backoff_ms', 'timeout_ms', 'ui_url', 'email_recipients']);

function bad(file: string, msg: string): FloeError {
  return new FloeError('PIPELINE_SPEC_INVALID_FIELD', `${file}: ${msg}`, { file });
}

/** Validates the `notifications` field of a spec (a list of mappings). */
export function parseNotifications(raw: unknown, file: string): NotificationSpec[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) throw bad(file, "'notifications' must be a list, e.g. '- alerts: [on-update-failure]' with 'webhook: URL' or 'command: CMD'.");
  return raw.map((n, i) => {
    const at = `notifications[${i}]`;
    if (!n || typeof n !== 'object' || Array.isArray(n)) throw bad(file, `${at} must be a mapping (alerts:, webhook: or command:, ...).`);
    const r = n as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!KEYS.has(k)) throw bad(file, `${at}: unknown field '${k}'. Known fields: ${[...KEYS].join(', ')}.`);
    if (r.email_recipients !== undefined) throw bad(file, `${at}: email_recipients is not supported by floe; use webhook: URL or command: CMD (which can send mail).`);
    const alerts = r.alerts;
    if (!Array.isArray(alerts) || !alerts.length) throw bad(file, `${at}: 'alerts' must list at least one of ${ALERTS.join(', ')}.`);
    for (const a of alerts) if (!ALERTS.includes(a as Alert)) throw bad(file, `${at}: unknown alert '${String(a)}'. Alerts: ${ALERTS.join(', ')}.`);
    const str = (k: string): string | undefined => {
      const v = r[k];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string' || !v.trim()) throw bad(file, `${at}: '${k}' must be a non-empty string.`);
      return v;
    };
    const numOf = (k: string, min: number, max: number, dflt?: number): number | undefined => {
      const v = r[k];
      if (v === undefined || v === null) return dflt;
      const x = typeof v === 'string' && /%$/.test(v) && k === 'expectation_threshold' ? Number(v.slice(0, -1)) / 100 : Number(v);
      if (!Number.isFinite(x) || x < min || x > max) throw bad(file, `${at}: '${k}' must be a number from ${min} to ${max}, got '${String(v)}'.`);
      return x;
    };
    const webhook = str('webhook');
    if (webhook && !/^https?:\/\/[^\s/]+/i.test(webhook)) throw bad(file, `${at}: 'webhook' must be an http:// or https:// URL.`);
    const command = str('command');
    if (!webhook && !command) throw bad(file, `${at}: give 'webhook: URL' and/or 'command: CMD' to deliver the notification.`);
    const h = r.headers;
    if (h !== undefined && h !== null && (typeof h !== 'object' || Array.isArray(h) || Object.values(h as object).some((v) => typeof v !== 'string' && typeof v !== 'number'))) throw bad(file, `${at}: 'headers' must map header names to strings.`);
    const spec: NotificationSpec = {
      alerts: [...new Set(alerts as Alert[])],
      webhook,
      headers: h ? Object.fromEntries(Object.entries(h as Record<string, unknown>).map(([k, v]) => [k, String(v)])) : undefined,
      command,
      expectationThreshold: numOf('expectation_threshold', 0, 1),
      maxDurationSeconds: numOf('max_duration_seconds', 0.001, 7 * 24 * 3600),
      retries: numOf('retries', 0, 10, 3)!,
      backoffMs: numOf('backoff_ms', 0, 600_000, 500)!,
      timeoutMs: numOf('timeout_ms', 1, 600_000, 10_000)!,
      uiUrl: str('ui_url'),
    };
    if (spec.alerts.includes('on-expectation-violation') && spec.expectationThreshold === undefined) throw bad(file, `${at}: on-expectation-violation needs 'expectation_threshold' (a fraction such as 0.05, or '5%').`);
    if (spec.alerts.includes('on-update-duration') && spec.maxDurationSeconds === undefined) throw bad(file, `${at}: on-update-duration needs 'max_duration_seconds'.`);
    return spec;
  });
}

/** A delivery target for the event log, without secrets (webhook URLs often hold tokens). */
function targetText(kind: 'webhook' | 'command', n: NotificationSpec): string {
  if (kind === 'command') return 'command';
  try {
    return `webhook ${new URL(n.webhook!).origin}`;
  } catch {
    return 'webhook';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function postOnce(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<void> {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(url, { method: 'POST', body, headers: { 'User-Agent': 'floe-notifications', ...headers, 'Content-Type': 'application/json' }, signal: ctl.signal, redirect: 'error' });
    await res.arrayBuffer().catch(() => undefined);
    if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`);
  } catch (e) {
    if (ctl.signal.aborted) throw new Error(`no answer within ${timeoutMs} ms`);
    throw new Error((e as Error & { cause?: Error }).cause?.message ?? (e as Error).message);
  } finally {
    clearTimeout(t);
  }
}

function runOnce(command: string, body: NotificationBody, cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // Its own process group: a timeout kills the command and whatever it started in the foreground.
    const child = spawn(command, {
      shell: true,
      cwd,
      detached: true,
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { ...process.env, FLOE_NOTIFICATION: JSON.stringify(body), FLOE_ALERT: body.alert, FLOE_PIPELINE: body.pipeline, FLOE_UPDATE: body.update, FLOE_FLOW: body.flow ?? '', FLOE_LINK: body.link },
    });
    let err = '';
    let settled = false;
    const finish = (e?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      // (A process the command left running in the background may hold stderr open: not waited for.)
      child.stderr!.destroy();
      if (e) reject(e);
      else resolve();
    };
    child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-500)));
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (e) => finish(e));
    // Settled when the command exits (not when every pipe closes), after its last stderr output is read.
    child.on('exit', (code, signal) =>
      setImmediate(() => finish(code === 0 ? undefined : new Error(signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` (no exit within ${timeoutMs} ms)` : ''}` : `exit status ${code}${err.trim() ? `: ${err.trim().split('\n').pop()}` : ''}`))),
    );
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(JSON.stringify(body));
  });
}

interface Delivery {
  alert: Alert;
  target: string;
  flow: string | null;
  dataset: string | null;
  attempts: number;
  error: string | null;
}

/** Watches one update's events and delivers its notifications. */
export class Notifier {
  private readonly pending: Promise<Delivery>[] = [];
  private readonly sent = new Set<string>();
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private state = 'QUEUED';
  private finished = false;

  private constructor(
    private specs: NotificationSpec[],
    private ctx: { pipeline: string; pipelineId: string; updateId: string; baseDir: string },
  ) {
    const limits = specs.filter((s) => s.alerts.includes('on-update-duration')).map((s) => s.maxDurationSeconds! * 1000);
    if (limits.length) {
      this.timer = setTimeout(() => this.durationExceeded(), Math.min(...limits));
      this.timer.unref();
    }
  }

  static create(specs: NotificationSpec[] | undefined, ctx: { pipeline: string; pipelineId: string; updateId: string; baseDir: string }): Notifier | undefined {
    return specs?.length ? new Notifier(specs, ctx) : undefined;
  }

  /** Called for every event of the update as it is emitted. */
  onEvent(e: PipelineEvent): void {
    if (this.finished) return;
    let details: Record<string, unknown> = {};
    try {
      details = ((JSON.parse(e.details) as Record<string, unknown>)[e.event_type] ?? {}) as Record<string, unknown>;
    } catch {
      return;
    }
    const error = e.error ? errorOf(e.error) : null;
    const updateId = e.origin.update_id;
    if (e.event_type === 'update_progress') {
      const state = String(details.state ?? '');
      if (updateId === this.ctx.updateId) this.state = state;
      if (state === 'FAILED') {
        const interrupted = updateId !== this.ctx.updateId;
        this.fire('on-update-failure', `update:${updateId}`, { update: updateId, update_state: 'FAILED', error, message: `Pipeline '${this.ctx.pipeline}': update ${updateId.slice(0, 8)} ${interrupted ? 'was interrupted' : 'has FAILED'}${error ? `: ${error.message}` : '.'}` });
      }
      if (updateId === this.ctx.updateId && ['COMPLETED', 'FAILED', 'CANCELED'].includes(state)) this.durationExceeded(true);
    } else if (e.event_type === 'flow_progress' && e.origin.flow_name) {
      const flow = e.origin.flow_name;
      const status = String(details.status ?? '');
      if (status === 'FAILED') {
        this.fire('on-flow-failure', `flow:${flow}`, { flow, dataset: e.origin.dataset_name, error, message: `Pipeline '${this.ctx.pipeline}': flow '${flow}' has FAILED in update ${updateId.slice(0, 8)}${error ? `: ${error.message}` : '.'}` });
      }
      const dq = details.data_quality as { expectations?: Array<{ name: string; dataset: string; passed_records: number; failed_records: number }> } | undefined;
      for (const x of dq?.expectations ?? []) {
        const passed = Number(x.passed_records);
        const failed = Number(x.failed_records);
        const rate = passed + failed ? failed / (passed + failed) : 0;
        for (const s of this.specs) {
          if (!s.alerts.includes('on-expectation-violation') || !(failed > 0 && rate > s.expectationThreshold!)) continue;
          this.deliver(s, 'on-expectation-violation', `exp:${flow}:${x.dataset}:${x.name}`, {
            flow,
            dataset: x.dataset,
            expectation: { name: x.name, dataset: x.dataset, passed, failed, failure_rate: rate, threshold: s.expectationThreshold! },
            message: `Pipeline '${this.ctx.pipeline}': expectation '${x.name}' on '${x.dataset}' failed for ${failed} of ${passed + failed} records (${(rate * 100).toFixed(2)}%, threshold ${(s.expectationThreshold! * 100).toFixed(2)}%) in flow '${flow}'.`,
          });
        }
      }
    }
  }

  private durationExceeded(atEnd = false): void {
    const ms = Date.now() - this.started;
    for (const s of this.specs) {
      if (!s.alerts.includes('on-update-duration') || ms <= s.maxDurationSeconds! * 1000) continue;
      this.deliver(s, 'on-update-duration', 'duration', {
        duration_ms: ms,
        update_state: atEnd ? this.state : 'RUNNING',
        message: `Pipeline '${this.ctx.pipeline}': update ${this.ctx.updateId.slice(0, 8)} ${atEnd ? 'ran' : 'has been running'} for ${(ms / 1000).toFixed(1)} s, longer than the limit of ${s.maxDurationSeconds} s.`,
      });
    }
    if (atEnd && this.timer) clearTimeout(this.timer);
  }

  private fire(alert: Alert, key: string, b: Partial<NotificationBody>): void {
    for (const s of this.specs) if (s.alerts.includes(alert)) this.deliver(s, alert, key, b);
  }

  private deliver(s: NotificationSpec, alert: Alert, key: string, b: Partial<NotificationBody>): void {
    const k = `${this.specs.indexOf(s)}:${alert}:${key}`;
    if (this.sent.has(k)) return;
    this.sent.add(k);
    const update = b.update ?? this.ctx.updateId;
    const base = (s.uiUrl ?? process.env.FLOE_UI_URL ?? 'http://127.0.0.1:4949/').replace(/\/?$/, '/');
    const body: NotificationBody = {
      alert,
      pipeline: this.ctx.pipeline,
      pipeline_id: this.ctx.pipelineId,
      update,
      update_state: b.update_state ?? this.state,
      flow: b.flow ?? null,
      dataset: b.dataset ?? null,
      error: b.error ?? null,
      expectation: b.expectation ?? null,
      duration_ms: b.duration_ms ?? Date.now() - this.started,
      message: b.message ?? alert,
      timestamp: new Date().toISOString(),
      link: `${base}#/p/${encodeURIComponent(this.ctx.pipeline)}/events/${encodeURIComponent(update)}`,
    };
    if (s.webhook) this.pending.push(this.withRetries(s, alert, 'webhook', body, () => postOnce(s.webhook!, JSON.stringify(body), s.headers ?? {}, s.timeoutMs)));
    if (s.command) this.pending.push(this.withRetries(s, alert, 'command', body, () => runOnce(s.command!, body, this.ctx.baseDir, s.timeoutMs)));
  }

  private async withRetries(s: NotificationSpec, alert: Alert, kind: 'webhook' | 'command', body: NotificationBody, once: () => Promise<void>): Promise<Delivery> {
    let error: string | null = null;
    let attempts = 0;
    for (let i = 0; i <= s.retries; i++) {
      attempts++;
      try {
        await once();
        return { alert, target: targetText(kind, s), flow: body.flow, dataset: body.dataset, attempts, error: null };
      } catch (e) {
        error = (e as Error).message;
        if (i < s.retries) await sleep(s.backoffMs * 2 ** i);
      }
    }
    return { alert, target: targetText(kind, s), flow: body.flow, dataset: body.dataset, attempts, error };
  }

  /**
   * Waits for every delivery and records each in the event log (via `emit`); never throws.
   */
  async finish(emit: (e: EventInput) => void): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (!this.finished) this.durationExceeded(true);
    this.finished = true;
    const done = await Promise.all(this.pending.splice(0));
    for (const d of done) {
      emit({
        eventType: 'notification',
        level: d.error ? 'WARN' : 'INFO',
        flow: d.flow,
        dataset: d.dataset,
        message: d.error
          ? `Notification ${d.alert} by ${d.target} FAILED after ${d.attempts} attempt(s): ${d.error}. The pipeline is not affected; check the notification settings in pipeline.yml.`
          : `Notification ${d.alert} delivered by ${d.target}${d.attempts > 1 ? ` after ${d.attempts} attempts` : ''}.`,
        details: { alert: d.alert, target: d.target, status: d.error ? 'FAILED' : 'DELIVERED', attempts: d.attempts, error: d.error },
      });
    }
  }
}

function errorOf(json: string): { code: string | null; message: string } {
  try {
    const x = (JSON.parse(json) as { exceptions?: Array<{ code?: string | null; message?: string }> }).exceptions?.[0];
    return { code: x?.code ?? null, message: String(x?.message ?? '').replace(/^\[[A-Z0-9_]+\]\s*/, '') };
  } catch {
    return { code: null, message: json };
  }
}
