/**
 * The serving parts of an exported graph around the model itself:
 *
 * - JPEG input: a batch of encoded images (`image_bytes`, DT_STRING [N]) decoded one by one in a
 *   TF1 while loop, as `tf.map_fn` builds it (TensorArrayV3 scatter -> Enter/Merge/Switch/LoopCond
 *   -> DecodeJpeg -> Cast -> ResizeBilinear -> TensorArrayWriteV3 -> NextIteration/Exit ->
 *   TensorArrayGatherV3). TF1 control-flow ops are what both TensorFlow Serving and the
 *   tfjs-converter executor run (tfjs does not run functional While ops with function bodies).
 * - preprocessing: the model's own affine input map (channel reversal, scale, offset) in-graph.
 * - head: `probabilities` (softmax of the logits, or the model's own softmax output),
 *   `class_ids` (int64 indices of the top k, from TopKV2) and `classes` (their names, gathered
 *   from a constant string table).
 */
import { LensError } from '../core/errors.js';
import { affineOf, type PreprocessingName } from '../core/preprocess.js';
import type { AffinePreprocessing } from '../core/preprocess.js';
import { GraphBuilder, tensorRef } from '../graph/builder.js';

/** Frame name of the decode loop (TensorFlow names while frames `<scope>/while_context`). */
const FRAME = 'map/while/while_context';

/**
 * Adds the JPEG decoding loop for a string input and returns the decoded batch
 * [N, height, width, channels] float32 in 0..255, resized with ResizeBilinear (half-pixel
 * centers, as tf.image.resize) to the model's size.
 */
export function addJpegDecoder(g: GraphBuilder, jpegs: string, size: readonly [number, number, number]): string {
  const [height, width, channels] = size;
  return g.scope('map', () => {
    const shape = g.op('Shape', [jpegs], { T: 'DT_STRING', out_type: 'DT_INT32' });
    const n = g.op('StridedSlice', [shape, g.int32('strided_slice/stack', [0]), g.int32('strided_slice/stack_1', [1]), g.int32('strided_slice/stack_2', [1])], {
      T: 'DT_INT32',
      Index: 'DT_INT32',
      shrink_axis_mask: 1,
    }, { name: 'strided_slice' });
    const input = g.op('TensorArrayV3', [n], { dtype: 'DT_STRING', element_shape: [], identical_element_shapes: true }, { name: 'TensorArray' });
    const scattered = g.scope('TensorArrayUnstack', () => {
      const range = g.op('Range', [g.int32('range/start', 0), n, g.int32('range/delta', 1)], { Tidx: 'DT_INT32' }, { name: 'range' });
      return g.op('TensorArrayScatterV3', [input, range, jpegs, tensorRef(input, 1)], { T: 'DT_STRING' }, { name: 'TensorArrayScatter/TensorArrayScatterV3' });
    });
    const start = g.int32('Const', 0);
    const output = g.op('TensorArrayV3', [n], { dtype: 'DT_FLOAT', element_shape: [height, width, channels], identical_element_shapes: true }, { name: 'TensorArray_1' });

    const exits = g.scope('while', () => {
      const enter = (x: string, T: string, name: string, constant = false) =>
        g.op('Enter', [x], { T, frame_name: FRAME, is_constant: constant }, { name });
      // NextIteration nodes close the loop; their names are needed before they exist.
      const counterNext = g.uniqueName('NextIteration');
      const flowNext = `${counterNext}_1`;
      const counterMerge = g.op('Merge', [enter(start, 'DT_INT32', 'Enter'), counterNext], { T: 'DT_INT32', N: 2 }, { name: 'Merge' });
      const flowMerge = g.op('Merge', [enter(tensorRef(output, 1), 'DT_FLOAT', 'Enter_1'), flowNext], { T: 'DT_FLOAT', N: 2 }, { name: 'Merge_1' });
      const less = g.op('Less', [counterMerge, enter(n, 'DT_INT32', 'Less/Enter', true)], { T: 'DT_INT32' }, { name: 'Less' });
      const cond = g.op('LoopCond', [less], {}, { name: 'LoopCond' });
      const counterSwitch = g.op('Switch', [counterMerge, cond], { T: 'DT_INT32' }, { name: 'Switch' });
      const flowSwitch = g.op('Switch', [flowMerge, cond], { T: 'DT_FLOAT' }, { name: 'Switch_1' });
      const i = g.op('Identity', [tensorRef(counterSwitch, 1)], { T: 'DT_INT32' }, { name: 'Identity' });
      const flow = g.op('Identity', [tensorRef(flowSwitch, 1)], { T: 'DT_FLOAT' }, { name: 'Identity_1' });
      // Constants inside the loop body hang off the iteration's Identity so that they live in its frame.
      const inFrame = { control: [i] };
      const bytes = g.op('TensorArrayReadV3', [
        enter(input, 'DT_RESOURCE', 'TensorArrayReadV3/Enter', true),
        i,
        enter(scattered, 'DT_FLOAT', 'TensorArrayReadV3/Enter_1', true),
      ], { dtype: 'DT_STRING' }, { name: 'TensorArrayReadV3' });
      const decoded = g.op('DecodeJpeg', [bytes], { channels }, { name: 'DecodeJpeg' });
      const asFloat = g.op('Cast', [decoded], { SrcT: 'DT_UINT8', DstT: 'DT_FLOAT' }, { name: 'Cast' });
      const batched = g.op('ExpandDims', [asFloat, g.int32('ExpandDims/dim', 0, inFrame)], { T: 'DT_FLOAT', Tdim: 'DT_INT32' }, { name: 'ExpandDims' });
      const resized = g.op('ResizeBilinear', [batched, g.int32('resize/size', [height, width], inFrame)], {
        T: 'DT_FLOAT',
        align_corners: false,
        half_pixel_centers: true,
      }, { name: 'resize/ResizeBilinear' });
      const image = g.op('Squeeze', [resized], { T: 'DT_FLOAT', squeeze_dims: [0] }, { name: 'resize/Squeeze' });
      const written = g.op('TensorArrayWriteV3', [
        enter(output, 'DT_RESOURCE', 'TensorArrayWrite/TensorArrayWriteV3/Enter', true),
        i,
        image,
        flow,
      ], { T: 'DT_FLOAT' }, { name: 'TensorArrayWrite/TensorArrayWriteV3' });
      const next = g.op('AddV2', [i, g.int32('add/y', 1, inFrame)], { T: 'DT_INT32' }, { name: 'add' });
      g.op('NextIteration', [next], { T: 'DT_INT32' }, { name: counterNext, absolute: true });
      g.op('NextIteration', [written], { T: 'DT_FLOAT' }, { name: flowNext, absolute: true });
      g.op('Exit', [counterSwitch], { T: 'DT_INT32' }, { name: 'Exit' });
      return g.op('Exit', [flowSwitch], { T: 'DT_FLOAT' }, { name: 'Exit_1' });
    });

    return g.scope('TensorArrayStack', () => {
      const size2 = g.op('TensorArraySizeV3', [output, exits], {}, { name: 'TensorArraySizeV3' });
      const range = g.op('Range', [g.int32('range/start', 0), size2, g.int32('range/delta', 1)], { Tidx: 'DT_INT32' }, { name: 'range' });
      return g.op('TensorArrayGatherV3', [output, range, exits], { dtype: 'DT_FLOAT', element_shape: [height, width, channels] }, { name: 'TensorArrayGatherV3' });
    });
  });
}

/**
 * Adds the model's input preprocessing (pixels 0..255 -> what the first layer expects) and
 * returns the preprocessed tensor; `raw` adds nothing. An explicit affine map (e.g. from a
 * quantized TFLite input) may be given instead of a preset.
 */
export function addPreprocessing(g: GraphBuilder, pixels: string, preprocessing: PreprocessingName | AffinePreprocessing): string {
  const p = typeof preprocessing === 'string' ? affineOf(preprocessing) : preprocessing;
  const identityOrder = p.channelOrder.every((c, i) => c === i);
  const reversed = p.channelOrder.length === 3 && p.channelOrder[0] === 2 && p.channelOrder[1] === 1 && p.channelOrder[2] === 0;
  const uniform = (v: readonly number[]) => v.every((e) => e === v[0]);
  const isIdentity = identityOrder && p.scale.every((s) => s === 1) && p.offset.every((o) => o === 0);
  if (isIdentity) return pixels;
  return g.scope('preprocess', () => {
    let x = pixels;
    if (!identityOrder) {
      if (!reversed) throw new LensError('MODEL_UNSUPPORTED', `preprocessing channel order [${p.channelOrder.join(',')}] cannot be exported (only RGB -> BGR reversal is)`);
      // RGB -> BGR, as Keras' caffe-style preprocess_input does.
      x = g.op('ReverseV2', [x, g.int32('ReverseV2/axis', [-1])], { T: 'DT_FLOAT', Tidx: 'DT_INT32' }, { name: 'ReverseV2' });
    }
    if (!p.scale.every((s) => s === 1)) {
      x = g.op('Mul', [x, g.float('mul/y', uniform(p.scale) ? p.scale[0]! : p.scale)], { T: 'DT_FLOAT' }, { name: 'mul' });
    }
    if (!p.offset.every((o) => o === 0)) {
      x = g.op('AddV2', [x, g.float('add/y', uniform(p.offset) ? p.offset[0]! : p.offset)], { T: 'DT_FLOAT' }, { name: 'add' });
    }
    return x;
  });
}

/** The outputs of the serving head. */
export interface HeadTensors {
  /** [N, classes] float probabilities. */
  probabilities: string;
  /** [N, k] string names of the top-k classes, best first. */
  classes: string;
  /** [N, k] int64 indices of the top-k classes, best first. */
  classIds: string;
}

/**
 * Adds `probabilities` (Softmax of `scores` when they are logits, else an Identity), `class_ids`
 * (the top-k indices as int64) and `classes` (their names: a constant string table gathered by
 * index, so that any TF Serving client reads names without a label file) on top of the model's
 * scores [N, classes]. Without labels the table holds the indices as text.
 */
export function addHead(g: GraphBuilder, scores: string, scoresAreProbabilities: boolean, topK: number, labels: readonly string[]): HeadTensors {
  const probabilities = scoresAreProbabilities
    ? g.op('Identity', [scores], { T: 'DT_FLOAT' }, { name: 'probabilities' })
    : g.op('Softmax', [scores], { T: 'DT_FLOAT' }, { name: 'probabilities' });
  const top = g.op('TopKV2', [probabilities, g.int32('top_k/k', topK)], { T: 'DT_FLOAT', sorted: true }, { name: 'top_k' });
  const classIds = g.op('Cast', [tensorRef(top, 1)], { SrcT: 'DT_INT32', DstT: 'DT_INT64' }, { name: 'class_ids' });
  const table = g.string('class_names', labels);
  const classes = g.op('GatherV2', [table, tensorRef(top, 1), g.int32('classes/axis', 0)], { Tparams: 'DT_STRING', Tindices: 'DT_INT32', Taxis: 'DT_INT32' }, { name: 'classes' });
  return { probabilities, classes, classIds };
}
