/** The studio server's API as the page sees it (src/studio/server.ts answers these). */

import type { ModelInfo, ImageInfo, State, Prediction, Completeness, PanelResult, PathData, CurveData, Interval, MetricsResult, Agreement, VerifyReport, Progress } from '../../src/studio/wire.js';

export type { ModelInfo, ImageInfo, State, Prediction, Completeness, PanelResult, PathData, CurveData, Interval, MetricsResult, Agreement, VerifyReport, Progress };

/** Query string from a record, leaving out undefined values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  return q.toString();
}

/** Fetches JSON; a failed request throws the server's one-line message. */
export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${res.status} ${res.statusText}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new Error((body as { error?: string }).error ?? `${res.status} ${res.statusText}`);
  return body as T;
}

export const postJson = <T>(url: string, body: unknown) => getJson<T>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/**
 * Follows a server-sent event stream: `progress`, `preview` (a coarse result) and `result`, then `done` or `failure`.
 * Resolves when the stream ends; rejects with the server's message on `failure`.
 */
export function followEvents<R>(url: string, on: { progress?: (p: Progress) => void; preview?: (r: R) => void; result: (r: R) => void }): { done: Promise<void>; cancel(): void } {
  const source = new EventSource(url);
  const done = new Promise<void>((resolve, reject) => {
    source.addEventListener('progress', (e) => on.progress?.(JSON.parse((e as MessageEvent<string>).data) as Progress));
    source.addEventListener('preview', (e) => on.preview?.(JSON.parse((e as MessageEvent<string>).data) as R));
    source.addEventListener('result', (e) => on.result(JSON.parse((e as MessageEvent<string>).data) as R));
    source.addEventListener('done', () => {
      source.close();
      resolve();
    });
    source.addEventListener('failure', (e) => {
      source.close();
      reject(new Error((JSON.parse((e as MessageEvent<string>).data) as { error: string }).error));
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) return;
      source.close();
      reject(new Error('lost the connection to the studio server'));
    };
  });
  return { done, cancel: () => source.close() };
}

/** A number for people: 4 significant digits, exponent when tiny or huge. */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '-∞';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(digits - 1) : Number(v.toPrecision(digits)).toString();
}
