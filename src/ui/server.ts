/**
 * `floe ui`: a read-only HTTP server (node:http) over a warehouse: one static page and a JSON API.
 *
 * Security, checked on every request before anything is read:
 * - GET and HEAD only (405 with `Allow: GET, HEAD` otherwise); no endpoint writes or runs SQL given by
 *   the request; pipelines, schemas and tables are plain names resolved through the pipelines folder
 *   and the catalog (see `data.ts`);
 * - the raw request path may not hold `..`, a backslash, `//` or an encoded `.`, `/`, `\` or NUL
 *   (`%2e`, `%2f`, `%5c`, `%00`): 400;
 * - bound to loopback, the `Host` header must name loopback (defeats DNS rebinding): 403;
 * - no CORS: a request with an `Origin` other than the server's own (or `Sec-Fetch-Site: cross-site`)
 *   is refused (403) and no `Access-Control-Allow-*` header is ever sent;
 * - exposed (a host other than loopback), every request needs the access token: `Authorization:
 *   Bearer TOKEN` or the `floe_ui_token` cookie, which a `?token=TOKEN` link sets (HttpOnly,
 *   SameSite=Strict) before redirecting to the same page without the token: 401 otherwise;
 * - a strict Content-Security-Policy (scripts, styles and connections from the server only), no
 *   framing, no referrer, no sniffing, no caching.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FloeError } from '../errors.js';
import { Floe } from '../floe.js';
import { BadRequestError, NotFoundError, PREVIEW_MAX_ROWS, UiData, type UiEvent } from './data.js';

export const DEFAULT_UI_PORT = 4949;
export const TOKEN_COOKIE = 'floe_ui_token';

export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** The page's files: a fixed list, never a path taken from the request. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

export interface UiServerOptions {
  warehouse: string;
  host?: string;
  port?: number;
  /** Required when the host is not loopback (generated when absent). */
  token?: string;
  /** Live event stream poll interval (ms). */
  pollMs?: number;
  floe?: Floe;
}

export interface UiServer {
  url: string;
  /** The link to open (with `?token=` when a token is required). */
  openUrl: string;
  host: string;
  port: number;
  token: string | null;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The static files' folder (the sources ship beside `dist/`). */
function staticDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..', '..', 'src', 'ui', 'static');
}

const BAD_PATH = /\.\.|\\|\/\/|%(2e|2f|5c|00)|[\x00-\x1f\x7f]/i;

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();
function tokenMatches(given: string | undefined, token: string): boolean {
  return given !== undefined && timingSafeEqual(sha(given), sha(token));
}

function cookie(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

function intParam(u: URL, name: string, dflt?: number): number | undefined {
  const v = u.searchParams.get(name);
  if (v === null || v === '') return dflt;
  if (!/^\d{1,9}$/.test(v)) throw new BadRequestError(`The parameter '${name}' must be a non-negative integer, got '${v}'.`);
  return Number(v);
}

/** Serialises work on the one DuckDB session. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(f: () => Promise<T>): Promise<T> {
    const p = this.tail.then(f, f);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const host = o.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  const token = loopback ? (o.token ?? null) : (o.token ?? randomBytes(24).toString('base64url'));
  if (token !== null && token.length < 16) throw new FloeError('UI_TOKEN_TOO_SHORT', 'The access token must have at least 16 characters; leave it out to have one generated.');
  const floe = o.floe ?? (await Floe.create());
  const data = new UiData(floe, o.warehouse);
  const lock = new Mutex();
  const pollMs = o.pollMs ?? 1000;
  const dir = staticDir();
  const files = new Map<string, Buffer>();
  for (const f of new Set(Object.values(STATIC).map((s) => s.file))) files.set(f, await fs.readFile(path.join(dir, f)));
  const streams = new Set<() => void>();

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => sendError(res, e));
  });

  function send(res: http.ServerResponse, status: number, body: string | Buffer, type: string, extra: Record<string, string> = {}, head = false): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), ...extra });
    res.end(head ? undefined : body);
  }

  function sendError(res: http.ServerResponse, e: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    let status = 500;
    let code = 'UI_INTERNAL_ERROR';
    let message = (e as Error)?.message ?? String(e);
    let headers: Record<string, string> = {};
    if (e instanceof HttpError) ({ status, code, headers } = e);
    else if (e instanceof NotFoundError) [status, code] = [404, e.code];
    else if (e instanceof BadRequestError) [status, code] = [400, e.code];
    else if (e instanceof FloeError) {
      code = e.code;
      status = /NOT_FOUND/.test(e.code) ? 404 : /INVALID|VERSION|TIME_TRAVEL|CHANGE_DATA|CDF|CDC/.test(e.code) ? 400 : 500;
    }
    // (The code has its own field: not repeated at the start of the message.)
    message = message.replace(/^\[[A-Z0-9_]+\]\s*/, '');
    send(res, status, JSON.stringify({ error: { code, message } }), 'application/json; charset=utf-8', headers);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'UI_METHOD_NOT_ALLOWED', `The floe UI is read-only: ${method} is not allowed (use GET).`, { Allow: 'GET, HEAD' });
    const raw = req.url ?? '/';
    const rawPath = raw.split('?')[0]!;
    if (!rawPath.startsWith('/') || BAD_PATH.test(rawPath)) throw new HttpError(400, 'UI_BAD_PATH', 'The request path is not allowed (no "..", backslashes, empty segments or encoded separators).');
    const hostHeader = req.headers.host ?? '';
    const hostName = hostHeader.replace(/:\d+$/, '');
    if (loopback && !isLoopback(hostName)) throw new HttpError(403, 'UI_BAD_HOST', `The Host header '${hostHeader}' is not this server (loopback only).`);
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${hostHeader}`) throw new HttpError(403, 'UI_CROSS_ORIGIN', 'Cross-origin requests are refused.');
    if (req.headers['sec-fetch-site'] === 'cross-site') throw new HttpError(403, 'UI_CROSS_ORIGIN', 'Cross-site requests are refused.');
    const u = new URL(raw, 'http://localhost');
    if (token !== null) {
      const q = u.searchParams.get('token');
      if (q !== null) {
        if (!tokenMatches(q, token)) throw new HttpError(401, 'UI_UNAUTHORIZED', 'The access token is wrong.');
        u.searchParams.delete('token');
        const rest = u.searchParams.toString();
        send(res, 303, '', 'text/plain', { Location: u.pathname + (rest ? `?${rest}` : ''), 'Set-Cookie': `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/` });
        return;
      }
      const auth = req.headers.authorization;
      const bearer = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
      if (!tokenMatches(bearer, token) && !tokenMatches(cookie(req, TOKEN_COOKIE), token)) {
        throw new HttpError(401, 'UI_UNAUTHORIZED', 'An access token is required: open the link floe ui printed (…?token=…) or send Authorization: Bearer TOKEN.', { 'WWW-Authenticate': 'Bearer' });
      }
    }
    const head = method === 'HEAD';
    const st = STATIC[u.pathname];
    if (st) return send(res, 200, files.get(st.file)!, st.type, {}, head);
    if (!u.pathname.startsWith('/api/')) throw new HttpError(404, 'UI_NOT_FOUND', `Nothing at ${u.pathname}.`);
    const seg = u.pathname.slice(5).split('/').map((s) => decodeURIComponent(s));
    const json = (v: unknown): void => send(res, 200, JSON.stringify(v), 'application/json; charset=utf-8', {}, head);

    if (seg[0] === 'pipelines') {
      if (seg.length === 1) return json(await lock.run(() => data.listPipelines()));
      const name = seg[1]!;
      const what = seg.slice(2).join('/');
      switch (what) {
        case 'graph':
          return json(await lock.run(() => data.graph(name)));
        case 'updates':
          return json(await lock.run(() => data.updates(name)));
        case 'flows':
          return json(await lock.run(() => data.flows(name)));
        case 'expectations':
          return json(await lock.run(() => data.expectations(name)));
        case 'events': {
          const f = { level: u.searchParams.get('level') ?? undefined, type: u.searchParams.get('type') ?? undefined, flow: u.searchParams.get('flow') ?? undefined, update: u.searchParams.get('update') ?? undefined, limit: intParam(u, 'limit', 500) };
          return json(await lock.run(() => data.filteredEvents(name, f)));
        }
        case 'events/stream':
          await data.requirePipeline(name);
          if (head) {
            return send(res, 200, '', 'text/event-stream; charset=utf-8', {}, true);
          }
          return stream(req, res, name, u);
      }
    } else if (seg[0] === 'tables') {
      if (seg.length === 1) return json(await lock.run(() => data.listTables()));
      if (seg.length >= 3) {
        const [, schema, table, what] = seg as [string, string, string, string | undefined];
        if (seg.length === 3) return json(await lock.run(() => data.tableInfo(schema, table)));
        if (seg.length === 4) {
          if (what === 'history') return json(await lock.run(() => data.history(schema, table, intParam(u, 'limit'))));
          if (what === 'preview') return json(await lock.run(() => data.preview(schema, table, intParam(u, 'version'), intParam(u, 'limit', 100)!)));
          if (what === 'changes') {
            const from = intParam(u, 'from');
            if (from === undefined) throw new BadRequestError("The change feed needs 'from' (a version).");
            return json(await lock.run(() => data.changes(schema, table, from, intParam(u, 'to'), intParam(u, 'limit', PREVIEW_MAX_ROWS)!)));
          }
        }
      }
    }
    throw new HttpError(404, 'UI_NOT_FOUND', `No API endpoint at ${u.pathname}.`);
  }

  /** Server-sent events: polls the event log and sends each new event once. */
  async function stream(req: http.IncomingMessage, res: http.ServerResponse, name: string, u: URL): Promise<void> {
    let lastId = u.searchParams.get('after') ?? (req.headers['last-event-id'] as string | undefined) ?? null;
    let seen = new Set<string>();
    let version = -2;
    let closed = false;
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    res.write(': floe ui event stream\n\n');
    if (lastId === null) {
      // Start after the current end of the log.
      const evs = await lock.run(async () => ((await data.eventLogVersion(name)) < 0 ? [] : data.events(name)));
      for (const e of evs) seen.add(e.id);
      version = await lock.run(() => data.eventLogVersion(name));
    }
    const tick = async (): Promise<void> => {
      if (closed) return;
      try {
        const v = await lock.run(() => data.eventLogVersion(name));
        if (v !== version && v >= 0) {
          version = v;
          const evs: UiEvent[] = await lock.run(() => data.events(name));
          if (lastId !== null) {
            const i = evs.findIndex((e) => e.id === lastId);
            if (i >= 0) {
              for (const e of evs.slice(0, i + 1)) seen.add(e.id);
            }
            lastId = null;
          }
          for (const e of evs) {
            if (seen.has(e.id)) continue;
            seen.add(e.id);
            res.write(`id: ${e.id}\nevent: pipeline_event\ndata: ${JSON.stringify(e)}\n\n`);
          }
          if (seen.size > 100_000) seen = new Set(evs.map((e) => e.id));
        } else res.write(': keep-alive\n\n');
      } catch (e) {
        res.write(`event: stream_error\ndata: ${JSON.stringify({ message: (e as Error).message })}\n\n`);
      }
      if (!closed) timer = setTimeout(() => void tick(), pollMs);
    };
    let timer: NodeJS.Timeout = setTimeout(() => void tick(), 0);
    const stop = (): void => {
      closed = true;
      clearTimeout(timer);
      streams.delete(stop);
      res.end();
    };
    streams.add(stop);
    req.on('close', stop);
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port ?? DEFAULT_UI_PORT, host, () => resolve());
    });
  } catch (e) {
    if (!o.floe) await floe.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new FloeError('UI_PORT_IN_USE', `Port ${o.port ?? DEFAULT_UI_PORT} on ${host} is in use: choose another with --port N (0: any free port).`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new FloeError('UI_BAD_HOST', `Cannot listen on '${host}': it is not an address of this machine.`);
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}/`;
  return {
    url,
    openUrl: token ? `${url}?token=${encodeURIComponent(token)}` : url,
    host,
    port,
    token,
    async close() {
      for (const s of [...streams]) s();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      if (!o.floe) await floe.close();
    },
  };
}
