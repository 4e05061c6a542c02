// Builds the dashboard into dist/: one JavaScript bundle, one stylesheet and
// index.html, with fixed names so that the server (crates/server/src/web.rs)
// embeds them and cargo sees when they change.
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';

const dist = new URL('./dist/', import.meta.url);
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  outdir: 'dist',
  // Leaflet's stylesheet refers to a few images (layer control, markers).
  loader: { '.png': 'file', '.svg': 'file' },
  assetNames: '[name]',
  logLevel: 'warning',
  legalComments: 'linked',
});
await copyFile(new URL('./src/index.html', import.meta.url), new URL('./index.html', dist));
console.log('dashboard built into web/dist');
