/**
 * Bugs planted on purpose by `npm run plants` (scripts/plant-bugs.ts). Each one slipped through the
 * suite once; `tests` are the files that must now fail with it.
 */
export interface Plant {
  name: string;
  /** What the bug does, in a few words. */
  what: string;
  file: string;
  /** Exact text in `file`, found exactly once. */
  find: string;
  replace: string;
  tests: string[];
}

export const PLANTS: Plant[] = [
  {
    name: 'batchnorm-scale-offset-swapped',
    what: 'TF2 SavedModel variables: gamma read from beta and beta from gamma',
    file: 'src/convert/graph/variables.ts',
    find: "return attrs.find((a) => a.name === 'VARIABLE_VALUE')?.checkpoint_key;",
    replace:
      "const key = attrs.find((a) => a.name === 'VARIABLE_VALUE')?.checkpoint_key;\n      return key?.includes('/gamma/') ? key.replace('/gamma/', '/beta/') : key?.includes('/beta/') ? key.replace('/beta/', '/gamma/') : key;",
    tests: ['test/savedmodel/reference.test.ts'],
  },
  {
    name: 'unknown-method-accepted',
    what: 'parseMethod accepts any method name',
    file: 'src/attribution/methods.ts',
    find: 'if ((METHOD_NAMES as readonly string[]).includes(name)) return name as MethodName;',
    replace: 'return name as MethodName;',
    tests: ['test/attribution/building-blocks.test.ts'],
  },
];
