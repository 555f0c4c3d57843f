/** TF1 training checkpoints and frozen GraphDefs: reading, listing, cutting to an image model, describing. */
export { checkpointInfo, isCheckpointDir, isCheckpointPrefix, listCheckpoints, readCheckpointState, resolveCheckpoint, type CheckpointInfo, type CheckpointState, type ChosenCheckpoint } from './checkpoint.js';
export { convertGraphFile, cutTensors, graphFileKind, readGraphFile, type ConvertedGraphFile, type CutTensor, type GraphFile, type GraphFileKind, type GraphFileOptions } from './graph-file.js';
export { describeGraphFile, type GraphFileDescription } from './describe.js';
