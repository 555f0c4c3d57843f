/** TF1 training checkpoints and frozen GraphDefs: reading, listing, cutting to an image model, describing. */
export { checkpointInfo, graphFileKind, isCheckpointDir, isCheckpointPrefix, listCheckpoints, readCheckpointState, resolveCheckpoint, type CheckpointInfo, type CheckpointState, type ChosenCheckpoint, type GraphFileKind } from './checkpoint.js';
export { convertGraphFile, cutTensors, readGraphFile, type ConvertedGraphFile, type CutTensor, type GraphFile, type GraphFileOptions } from './graph-file.js';
export { describeGraphFile, type GraphFileDescription } from './describe.js';
