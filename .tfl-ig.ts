// IG-50 (gausslegendre, black baseline) on MobileNetV2 quant: wall time of runs after a warm-up.
import { initBackend } from '/work/lens-tflite/src/engines/tfjs/index.js';
import { loadImageModel } from '/work/lens-tflite/src/models/load.js';
import { integratedGradients } from '/work/lens-tflite/src/attribution/integrated-gradients.js';
import { loadPixels } from '/work/lens-tflite/src/image/index.js';
const DIR = '/work/shared/models-external/mobilenet_v2_1.0_224_quant';
await initBackend({ backend: 'wasm' });
const engine = process.argv[2];
const runs = Number(process.argv[3] ?? 2);
const model = await loadImageModel(`${DIR}/mobilenet_v2_1.0_224_quant.tflite`, engine ? ({ engine } as never) : {});
const image = await loadPixels('/work/shared/images/parrot.jpg', { size: [224, 224], resize: 'squash' });
console.log('engine', (model as any).engine?.name, (model as any).engine?.reason ?? '');
for (let r = 0; r <= runs; r++) {
  const t0 = performance.now(); const c0 = process.cpuUsage();
  const a = await integratedGradients(model, image, { steps: 50, seed: r + 1 });
  const c = process.cpuUsage(c0); console.log(`run ${r}${r === 0 ? ' (warm-up)' : ''}: ${((performance.now() - t0) / 1000).toFixed(2)} s wall, ${((c.user + c.system) / 1e6).toFixed(2)} s cpu, delta ${(a as any).completeness?.delta ?? JSON.stringify(Object.keys(a))}`);
}
model.dispose();
