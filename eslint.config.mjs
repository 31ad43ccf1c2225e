// Lint: only what the type checker cannot catch and costs real bugs, with type information.
// A promise nobody awaits loses its error (an unhandled rejection kills the server) and its
// ordering (a cancelled generation racing the next); a promise passed where a callback's result
// is ignored does the same. Formatting is prettier's job, types tsc's.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'out/',
      '.cache/',
      '.tools/',
      '.gpu-bundle/',
      'test-results/',
      '**/*.mjs',
      '**/*.cjs',
      '**/*.js',
    ],
  },
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // VS Code's API returns Thenables (executeCommand's rejects when the command throws).
      '@typescript-eslint/no-floating-promises': ['error', { checkThenables: true }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
    },
  },
);
