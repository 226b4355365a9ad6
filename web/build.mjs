// Builds the dashboard into web/dist: one JS bundle and one CSS bundle, each
// named by a hash of its content (so the daemon can let browsers cache them
// for good), and index.html pointing at them. The daemon compiles web/dist
// in; web/dist is committed so that building gpurm never needs Node.
//
//   node build.mjs            rebuild web/dist
//   node build.mjs --check    fail when web/dist differs from a fresh build
import * as esbuild from 'esbuild';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const check = process.argv.includes('--check');

async function build(outdir) {
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: ['src/main.js', 'src/style.css'],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome100', 'firefox100', 'safari15'],
    entryNames: 'app-[hash]',
    outdir,
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
  const js = outputs.find((name) => name.endsWith('.js'));
  const css = outputs.find((name) => name.endsWith('.css'));
  const html = readFileSync(join(here, 'src/index.html'), 'utf8').replace('@JS@', js).replace('@CSS@', css);
  writeFileSync(join(outdir, 'index.html'), html);
}

function files(dir) {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

const staging = mkdtempSync(join(tmpdir(), 'gpurm-web-'));
try {
  await build(staging);
  if (check) {
    const fresh = files(staging);
    const committed = files(dist);
    const stale =
      fresh.join() !== committed.join() ||
      fresh.some((name) => !readFileSync(join(staging, name)).equals(readFileSync(join(dist, name))));
    if (stale) {
      console.error(`web/dist is not the build of web/src (fresh: ${fresh.join(' ')}; committed: ${committed.join(' ')}).`);
      console.error('Rebuild it with scripts/build-ui.sh and commit web/dist.');
      process.exit(1);
    }
    console.log(`web/dist is up to date (${fresh.join(', ')})`);
  } else {
    rmSync(dist, { recursive: true, force: true });
    mkdirSync(dist);
    for (const name of files(staging)) copyFileSync(join(staging, name), join(dist, name));
    for (const name of files(dist)) {
      console.log(`web/dist/${name}  ${readFileSync(join(dist, name)).length} bytes`);
    }
  }
} finally {
  rmSync(staging, { recursive: true, force: true });
}
