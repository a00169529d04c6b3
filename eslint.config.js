import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/**
 * Besides the recommended rules, this file holds the architecture's import boundaries:
 * src/lib never reaches the CLI layer, and commands reach the network and the disk only
 * through src/lib.
 */
export default tseslint.config(
  {ignores: ['dist/**', 'node_modules/**', 'man/**', 'bench/.work/**']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: {process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', structuredClone: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', performance: 'readonly', queueMicrotask: 'readonly'}},
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_'}],
      'no-unused-expressions': 'error',
    },
  },
  {
    files: ['src/lib/**/*.ts'],
    rules: {
      'no-console': 'error',
      'no-restricted-imports': ['error', {
        patterns: [
          {group: ['@oclif/*'], message: 'src/lib never imports oclif: return data, let the command render it.'},
          {group: ['cli-table3'], message: 'src/lib never renders tables; src/cli/render does.'},
          {group: ['**/cli/*', '**/commands/*', '../cli/**', '../../cli/**', '../commands/**', '../../commands/**'], message: 'src/lib never depends on the CLI layer.'},
        ],
      }],
      'no-restricted-properties': ['error', {object: 'process', property: 'exit', message: 'src/lib never exits; throw a BitsError.'}],
    },
  },
  {
    files: ['src/commands/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['undici', 'node:fs', 'node:fs/promises', 'fs', 'fs/promises', 'node:http', 'node:https', 'node:net', 'fast-xml-parser'].map((name) => ({name, message: 'Commands reach the network and the disk only through src/lib.'})),
      }],
    },
  },
)
