/**
 * Runs the scripted interaction tests in test/raft/scripts/*.txt (format: script-runner.ts).
 * RAFT_SCRIPT_REWRITE=1 rewrites the expected outputs from the actual ones; review the diff.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ScriptRunner, parseScript, renderScript } from './script-runner';

const dir = path.join(__dirname, '..', '..', 'raft', 'scripts');
const rewrite = process.env['RAFT_SCRIPT_REWRITE'] === '1';
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort();

describe('scripted interactions', () => {
  test('there are scripts', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });

  for (const file of files) {
    test(file, () => {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      const { blocks, trailing } = parseScript(text);
      const runner = new ScriptRunner();
      const actual = blocks.map((b) => ({ ...b, expected: runner.run(b.command) }));
      if (rewrite) {
        fs.writeFileSync(path.join(dir, file), renderScript(actual, trailing));
        return;
      }
      for (let i = 0; i < blocks.length; i++) {
        const b = blocks[i]!;
        const got = actual[i]!.expected.join('\n');
        const want = b.expected.join('\n');
        if (got !== want) {
          throw new Error(`${file}:${b.line}: "${b.command}"\n--- expected\n${want}\n--- actual\n${got}`);
        }
      }
    });
  }
});
