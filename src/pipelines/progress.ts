/**
 * A per-flow progress display for terminals: one line per flow (status, rows, time), redrawn in
 * place as the update's events arrive; other notable events (warnings, errors, the update's state)
 * print above the block. `render` is pure (tests feed it events); the CLI writes its output.
 */
import type { PipelineEvent } from './event-log.js';

interface FlowLine {
  flow: string;
  dataset: string;
  status: string;
  rows: number | null;
  upserted: number;
  deleted: number;
  dropped: number;
  started: number | null;
  ms: number | null;
  note: string;
}

const ICON: Record<string, string> = { QUEUED: '·', RUNNING: '▶', COMPLETED: '✓', FAILED: '✗', SKIPPED: '-', EXCLUDED: '-', STOPPED: '■' };

export class ProgressDisplay {
  private readonly flows = new Map<string, FlowLine>();
  /** Lines of the block currently on screen (to move back over). */
  private drawn = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** The terminal output for one event: messages above, then the redrawn block. */
  render(e: PipelineEvent): string {
    const above: string[] = [];
    const details = safeJson(e.details);
    if (e.event_type === 'flow_definition' && e.origin.flow_name) {
      this.flows.set(e.origin.flow_name, { flow: e.origin.flow_name, dataset: e.origin.dataset_name ?? '', status: 'QUEUED', rows: null, upserted: 0, deleted: 0, dropped: 0, started: null, ms: null, note: '' });
    } else if (e.event_type === 'flow_progress' && e.origin.flow_name) {
      const d = (details.flow_progress ?? {}) as { status?: string; duration_ms?: number; note?: string | null; reason?: string; metrics?: { num_output_rows?: number; num_upserted_rows?: number; num_deleted_rows?: number }; data_quality?: { dropped_records?: number } };
      const l = this.flows.get(e.origin.flow_name) ?? { flow: e.origin.flow_name, dataset: e.origin.dataset_name ?? '', status: 'QUEUED', rows: null, upserted: 0, deleted: 0, dropped: 0, started: null, ms: null, note: '' };
      l.status = d.status ?? l.status;
      if (l.status === 'RUNNING') l.started = this.now();
      if (d.duration_ms !== undefined) l.ms = d.duration_ms;
      if (d.metrics) {
        l.rows = (l.rows ?? 0) + (d.metrics.num_output_rows ?? 0);
        l.upserted += d.metrics.num_upserted_rows ?? 0;
        l.deleted += d.metrics.num_deleted_rows ?? 0;
      }
      l.dropped += d.data_quality?.dropped_records ?? 0;
      l.note = d.note ?? d.reason ?? '';
      this.flows.set(l.flow, l);
      if (e.level === 'ERROR' || e.level === 'WARN') above.push(`${e.level === 'ERROR' ? '✗' : '!'} ${e.message}`);
    } else if (e.event_type === 'update_progress') {
      const state = String((details.update_progress as { state?: string } | undefined)?.state ?? '');
      if (['COMPLETED', 'FAILED', 'CANCELED', 'STOPPING'].includes(state) || e.level === 'ERROR') above.push(`${e.level === 'ERROR' ? '✗' : '·'} ${e.message}`);
    } else if (e.level === 'WARN' || e.level === 'ERROR') above.push(`${e.level === 'ERROR' ? '✗' : '!'} ${e.message}`);
    if (!above.length && e.event_type !== 'flow_progress' && e.event_type !== 'flow_definition') return '';
    let out = this.drawn ? `\x1b[${this.drawn}A\x1b[0J` : '';
    for (const a of above) out += `${a}\n`;
    const block = this.block();
    out += block.map((b) => `${b}\n`).join('');
    this.drawn = block.length;
    return out;
  }

  /** One line per flow. */
  block(): string[] {
    const ls = [...this.flows.values()];
    if (!ls.length) return [];
    const w = Math.max(...ls.map((l) => l.flow.length));
    return ls.map((l) => {
      const ms = l.status === 'RUNNING' && l.started !== null ? this.now() - l.started : l.ms;
      const parts = [`${ICON[l.status] ?? '?'} ${l.flow.padEnd(w)}  ${l.status.padEnd(9)}`];
      if (l.rows !== null) parts.push(`${l.rows} rows${l.upserted || l.deleted ? ` (${l.upserted} upserted, ${l.deleted} deleted)` : ''}`);
      if (l.dropped) parts.push(`${l.dropped} dropped`);
      if (ms !== null) parts.push(`${(ms / 1000).toFixed(1)} s`);
      if (l.note) parts.push(l.note);
      return parts.join('  ');
    });
  }
}

function safeJson(s: string): Record<string, unknown> {
  try {
    return JSON.parse(s) as Record<string, unknown>;
  } catch {
    return {};
  }
}
