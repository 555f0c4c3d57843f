/**
 * The studio's HTTP API as data: what src/studio/server.ts answers and what the page (studio/src)
 * reads. Types only and no imports, so the server and the browser bundle share one definition.
 */

export interface ModelInfo {
  name: string;
  inputShape: [number, number, number];
  classes: number;
  output: 'logit' | 'probability';
  preprocessing: string;
  labels: string[] | null;
}

export interface ImageInfo {
  id: string;
  name: string;
  hasMask: boolean;
  size: [number, number];
}

export interface State {
  local: ModelInfo | null;
  engine: string | null;
  served: ModelInfo | null;
  server: string | null;
  servedError: string | null;
  images: ImageInfo[];
  choices: { methods: string[]; baselines: string[]; rules: string[]; viz: string[]; signs: string[]; metrics: string[] };
  /** The view the page opens with: the CLI's default (`lens explain --viz --sign`), so the first picture is the one `lens explain` draws. */
  defaults: { viz: string; sign: string };
  maxUploadBytes: number;
}

export interface Prediction {
  index: number;
  label?: string;
  probability: number;
}

export interface Completeness {
  sum: number;
  inputScore: number;
  baselineScore: number;
  delta: number;
  relative: number;
}

/** One explained panel (an SSE `result` of /api/explain, or a coarse `preview` of it). */
export interface PanelResult {
  key: string;
  /** Which of the requested baselines this is. */
  panel: number;
  /** A coarse pass (few steps), replaced by the `result` of the same panel. */
  preview: boolean;
  /** A preview's picture (own colour scale) as a PNG data URL, so it shows without waiting for the server. */
  picture?: string;
  baseline: string;
  millis: number;
  method: string;
  target: { index: number; label?: string; probability: number; score: number };
  output: string;
  steps: number | null;
  rule: string | null;
  description: string | null;
  completeness: Completeness | null;
  hasPath: boolean;
  gradientEvaluations: number;
}

/** The IG path as the path explorer draws it. */
export interface PathData {
  alphas: number[];
  weights: number[];
  /** F at each point. */
  scores: number[];
  /** dF/dalpha at each point: sum over pixels of (x - x') * gradient (the integrand). */
  integrand: number[];
  /** Mean |gradient| over pixels at each point (the saturation picture of the IG paper). */
  gradientMagnitude: number[];
  inputScore: number;
  baselineScore: number;
  delta: number;
  relative: number;
  rule: string;
  /** Baseline images drawn along this path (the first is the one interpolated in the picture). */
  baselines: number;
}

export interface CurveData {
  fractions: number[];
  scores: number[];
  auc: number;
}

export interface Interval {
  mean: number;
  low: number;
  high: number;
}

export interface MetricsResult {
  baselines: string[];
  summary: Record<string, Record<string, Interval>>;
  images: number;
}

export interface Agreement {
  image: string;
  local: Prediction[];
  served: Prediction[];
  maxProbabilityDifference: number;
  sameTopK: boolean;
  ok: boolean;
}

export interface VerifyReport {
  ok: boolean;
  topK: number;
  tolerance: number;
  images: Agreement[];
  warnings: string[];
}

export interface Progress {
  done: number;
  total: number;
  stage?: string;
  panel?: number;
  panels?: number;
}
