import type { Command } from 'commander';

/**
 * `lens doctor`: which TensorFlow.js backend runs, whether onnxruntime's native kernels are there
 * for Keras, tfjs and SavedModel models, with versions and how to add GPU support.
 */
export function register(program: Command): void {
  program
    .command('doctor')
    .description('report the TensorFlow.js backend in use, versions, SIMD/threads, and how to enable the GPU')
    .option('--backend <name>', 'force a backend: auto, tensorflow-gpu, tensorflow, wasm, cpu (or LENS_BACKEND)')
    .option('--json', 'print JSON')
    .action(async (opts: { backend?: string; json?: boolean }) => {
      const { initBackend, describeBackend, GPU_INSTALL_COMMAND, NATIVE_CPU_INSTALL_COMMAND } = await import('../../engines/tfjs/index.js');
      const { availableParallelism } = await import('node:os');
      const { loadOnnxRuntime, onnxThreads } = await import('../../engines/onnx/runtime.js');
      const { preferredEngine } = await import('../../models/engine.js');
      const info = await initBackend(opts.backend !== undefined ? { backend: opts.backend } : {});
      const { choice, tfjsReason } = preferredEngine();
      const runtime = await loadOnnxRuntime();
      const threads = onnxThreads();
      const onnxruntime = runtime.available ? { available: true, version: runtime.version, threads } : { available: false, reason: runtime.reason };
      // For models whose layers or ops all compile; the others name theirs in model.engine.reason.
      const engine =
        tfjsReason !== undefined || !runtime.available
          ? `TensorFlow.js (${describeBackend(info)})`
          : `onnxruntime-node ${runtime.version} (native CPU, ${threads} threads)`;
      const report = {
        backend: info,
        engineChoice: choice,
        engine,
        onnxruntime,
        node: process.version,
        cores: availableParallelism(),
        gpuInstall: GPU_INSTALL_COMMAND,
        nativeCpuInstall: NATIVE_CPU_INSTALL_COMMAND,
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const lines = [
        `backend:   ${describeBackend(info)}  [${info.package}]`,
        `tfjs:      ${info.tfjsVersion}`,
        `node:      ${process.version}, ${report.cores} cores`,
        `simd:      ${info.simd ? 'yes' : 'no'}`,
        `threads:   ${info.name !== 'wasm' ? '-' : info.threadCount > 1 ? `${info.threadCount} (tfjs threaded SIMD build; LENS_WASM_THREADS=1 turns them off)` : `1${info.threadsReason ? ` (${info.threadsReason})` : ''}`}`,
        ...info.skipped.map((s) => `skipped:   ${s.choice}: ${s.reason}`),
        `engine:    ${engine} runs the forward and gradient passes of Keras, tfjs and SavedModel models [LENS_ENGINE=${choice}]`,
        ...(runtime.available ? [] : [`           onnxruntime unavailable: ${runtime.reason}`]),
        '',
        info.gpu
          ? 'GPU:       in use'
          : `GPU:       not in use. On a machine with CUDA and cuDNN, run: ${GPU_INSTALL_COMMAND}\n           (CPU-only libtensorflow: ${NATIVE_CPU_INSTALL_COMMAND})`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
